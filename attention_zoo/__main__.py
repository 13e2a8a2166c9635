import sys

from attention_zoo.cli import main

sys.exit(main())
