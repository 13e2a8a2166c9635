"""The papers behind the zoo's models, for `model_info(name).paper` and `.citation`."""

from attention_zoo.registry import Paper

RESNET = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun",
    venue="CVPR",
    year=2016,
    url="https://arxiv.org/abs/1512.03385",
    bibtex="""@inproceedings{he2016resnet,
  title={Deep Residual Learning for Image Recognition},
  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  booktitle={CVPR},
  year={2016}
}""",
)

RESNEXT = Paper(
    title="Aggregated Residual Transformations for Deep Neural Networks",
    authors="Saining Xie, Ross Girshick, Piotr Dollar, Zhuowen Tu, Kaiming He",
    venue="CVPR",
    year=2017,
    url="https://arxiv.org/abs/1611.05431",
    bibtex="""@inproceedings{xie2017resnext,
  title={Aggregated Residual Transformations for Deep Neural Networks},
  author={Xie, Saining and Girshick, Ross and Doll{\\'a}r, Piotr and Tu, Zhuowen and He, Kaiming},
  booktitle={CVPR},
  year={2017}
}""",
)

SENET = Paper(
    title="Squeeze-and-Excitation Networks",
    authors="Jie Hu, Li Shen, Gang Sun",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1709.01507",
    bibtex="""@inproceedings{hu2018senet,
  title={Squeeze-and-Excitation Networks},
  author={Hu, Jie and Shen, Li and Sun, Gang},
  booktitle={CVPR},
  year={2018}
}""",
)

SKNET = Paper(
    title="Selective Kernel Networks",
    authors="Xiang Li, Wenhai Wang, Xiaolin Hu, Jian Yang",
    venue="CVPR",
    year=2019,
    url="https://arxiv.org/abs/1903.06586",
    bibtex="""@inproceedings{li2019sknet,
  title={Selective Kernel Networks},
  author={Li, Xiang and Wang, Wenhai and Hu, Xiaolin and Yang, Jian},
  booktitle={CVPR},
  year={2019}
}""",
)

CBAM = Paper(
    title="CBAM: Convolutional Block Attention Module",
    authors="Sanghyun Woo, Jongchan Park, Joon-Young Lee, In So Kweon",
    venue="ECCV",
    year=2018,
    url="https://arxiv.org/abs/1807.06521",
    bibtex="""@inproceedings{woo2018cbam,
  title={CBAM: Convolutional Block Attention Module},
  author={Woo, Sanghyun and Park, Jongchan and Lee, Joon-Young and Kweon, In So},
  booktitle={ECCV},
  year={2018}
}""",
)

BAM = Paper(
    title="BAM: Bottleneck Attention Module",
    authors="Jongchan Park, Sanghyun Woo, Joon-Young Lee, In So Kweon",
    venue="BMVC",
    year=2018,
    url="https://arxiv.org/abs/1807.06514",
    bibtex="""@inproceedings{park2018bam,
  title={BAM: Bottleneck Attention Module},
  author={Park, Jongchan and Woo, Sanghyun and Lee, Joon-Young and Kweon, In So},
  booktitle={BMVC},
  year={2018}
}""",
)

ECA = Paper(
    title="ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    authors="Qilong Wang, Banggu Wu, Pengfei Zhu, Peihua Li, Wangmeng Zuo, Qinghua Hu",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1910.03151",
    bibtex="""@inproceedings{wang2020eca,
  title={ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks},
  author={Wang, Qilong and Wu, Banggu and Zhu, Pengfei and Li, Peihua and Zuo, Wangmeng and Hu, Qinghua},
  booktitle={CVPR},
  year={2020}
}""",
)
