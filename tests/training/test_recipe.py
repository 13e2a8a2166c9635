"""Recipes: every shipped recipe is valid and builds its model; --set overrides are parsed as
TOML values and checked against the schema like the file itself."""


import keras
import pytest

import attention_zoo
from attention_zoo import pretrained
from attention_zoo.data import DatasetInfo
from attention_zoo.training import recipe as recipes
from attention_zoo.training.recipe import RecipeError, load
from attention_zoo.training.trainer import build_model, set_phase_trainable

RECIPE_FILES = sorted(recipes.RECIPES_DIR.glob("*.toml"))
LARGE = ("resnet50", "sknet50", "image_folder", "attention_unet_cbam")
CLASSES = {"tf_flowers": 5, "oxford_iiit_pet": 3, "shapes": 5, "shape_segmentation": 4, "cluttered_digits": 10}


def test_the_shipped_recipes_cover_the_promised_trainings():
    names = {path.stem for path in RECIPE_FILES}
    assert {
        "quickstart", "cbam_resnet50_tf_flowers", "se_resnet50_tf_flowers", "sknet50_tf_flowers", "image_folder",
        "attention_unet_oxford_pet", "attention_unet_cbam_resnet50_oxford_pet", "stn_cluttered_digits",
        "dcn_cluttered_digits", "ram_cluttered_digits",
    } <= names


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_every_recipe_validates_with_defaults_filled_in(path):
    settings = load(path).settings
    assert settings["name"] == path.stem
    assert set(settings) == set(recipes.SCHEMA[""]) | set(recipes.SECTION_NAMES)
    assert all(set(phase) == set(recipes.PHASE) for phase in settings["phases"])


def recipe_marks(path):
    return [pytest.mark.slow] if any(key in path.stem for key in LARGE) else []


@pytest.mark.parametrize("path", [pytest.param(p, marks=recipe_marks(p)) for p in RECIPE_FILES], ids=lambda p: p.stem)
def test_every_recipe_builds_its_model_and_freezes_what_its_phases_say(path):
    settings = load(path).settings
    if settings["model"]["name"] not in attention_zoo.list_models():
        pytest.fail(f"{path.name} trains {settings['model']['name']}, which is not registered")
    # Published tags download their checkpoint; loading them is tested offline in test_trainer.
    assert settings["model"]["weights"] in ("", *attention_zoo.pretrained.available_weights(settings["model"]["name"]))
    settings["model"]["weights"] = ""
    classes = CLASSES.get(settings["data"]["name"], 5)
    info = DatasetInfo("x", settings["task"], classes, tuple(map(str, range(classes))), settings["data"]["channels"])
    model, _ = build_model(settings, info)
    height, width = settings["data"]["image_size"]
    spec = model.compute_output_spec(keras.KerasTensor((2, height, width, info.channels)))
    expected = (2, classes) if settings["task"] == "classification" else (2, height, width, classes)
    assert tuple(spec.shape) == expected
    everything = len(model.trainable_weights)
    for phase in settings["phases"]:
        count = set_phase_trainable(model, phase, settings)
        assert (0 < count < everything) if phase["freeze_backbone"] else count == everything


def test_recipes_are_found_by_name():
    assert load("quickstart").path.endswith("quickstart.toml")
    with pytest.raises(RecipeError, match="no recipe 'quikstart'.*did you mean 'quickstart'"):
        load("quikstart")


def test_overrides_are_typed_toml_values():
    settings = load(
        "quickstart",
        [
            "training.batch_size=16",
            "phases.0.learning_rate=1",  # an integer is a fine float
            "model.name=cbam_resnet18",  # a bare word is a string
            "model.options.drop_rate=0.2",  # free-form model options, nested
            "data.image_size=[32, 48]",
            "augment.flip=\"vertical\"",
            "training.jit_compile=false",  # a TOML bool for a choice string
            "data.cache=false",
        ],
    ).settings
    assert settings["training"]["batch_size"] == 16
    assert settings["phases"][0]["learning_rate"] == 1.0 and isinstance(settings["phases"][0]["learning_rate"], float)
    assert settings["model"]["name"] == "cbam_resnet18" and settings["model"]["options"] == {"drop_rate": 0.2}
    assert settings["data"]["image_size"] == [32, 48] and settings["augment"]["flip"] == "vertical"
    assert settings["training"]["jit_compile"] == "false" and settings["data"]["cache"] is False


@pytest.mark.parametrize(
    "override, match",
    [
        ("training.batch_size=abc", "training.batch_size must be an integer; got 'abc'"),
        ("training.batch_size=1.5", "must be an integer; got 1.5"),
        ("training.batchsize=8", "unknown key 'training.batchsize' \\(did you mean 'batch_size'\\?\\)"),
        ("trainig.batch_size=8", "unknown section 'trainig' \\(did you mean 'training'\\?\\)"),
        ("phases.3.epochs=1", "the recipe has 1 phase\\(s\\)"),
        ("phases.epochs=1", "address a phase by its index"),
        ("augment.flip=diagonal", "augment.flip must be one of .*'horizontal'"),
        ("data.image_size=64", "must be a list of integers"),
        ("data.cache=yes", "must be true or false"),
        ("training.batch_size=0", "at least 1"),
        ("data.name.x=1", "'data.name' is not a table"),
        ("training", "expects key=value"),
        ("model=resnet18", "'model' is a section"),
    ],
)
def test_bad_overrides_are_rejected_with_a_clear_message(override, match):
    with pytest.raises(RecipeError, match=match):
        load("quickstart", [override])


def base():
    return {"model": {"name": "resnet18"}, "data": {"name": "shapes"}, "phases": [{"epochs": 1, "learning_rate": 0.1}]}


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda r: r.update(colour=1), "unknown key 'colour'"),
        (lambda r: r["model"].pop("name"), "missing required key 'model.name'"),
        (lambda r: r.update(phases=[]), "at least one \\[\\[phases\\]\\]"),
        (lambda r: r["phases"][0].update(epochs=0), "0 epochs in total"),
        (lambda r: r["phases"][0].update(learning_rat=1), "unknown key 'phases.0.learning_rat'"),
        (lambda r: r.update(data={"image_size": [64]}), "\\[height, width\\]"),
        (lambda r: r["data"].update(source="tfds", name=""), "data.name is required"),
        (lambda r: r.update(task="detection"), "task must be one of"),
        (lambda r: r.update(training={"label_smoothing": 1.0}), "label_smoothing must be below 1"),
    ],
)
def test_invalid_recipes_are_rejected(change, match):
    raw = base()
    change(raw)
    with pytest.raises(RecipeError, match=match):
        load(raw)


def test_a_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[model\nname = 'x'\n")
    with pytest.raises(RecipeError, match="broken.toml: not valid TOML"):
        load(str(path))
