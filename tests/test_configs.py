import pytest

from liser.configs import PRESETS, ConfigError, make_config, parse_overrides


def test_presets_follow_the_paper():
    assert not make_config("no-dstl").distills
    c = make_config("conf-vid-sp-dstl")
    assert c.lambda_sd > 0 and c.lambda_vd > 0 and c.confidence and c.distill_loss == "mae"
    assert make_config("vid-dstl").lambda_sd == 0 and make_config("sp-dstl").lambda_vd == 0
    assert make_config("distill-ce").distill_loss == "ce"
    assert make_config("two-stage-train").schedule == "two-stage"
    d = make_config("no-dstl")
    assert (d.lr, d.batch_size, d.epochs) == (1e-4, 25, 50)  # section 3.6


def test_overrides_and_yaml(tmp_path):
    assert make_config("vid-sp-dstl", **parse_overrides(["lambda_sd=5", "confidence=true"])).lambda_sd == 5
    f = tmp_path / "mine.yaml"
    f.write_text("preset: sp-dstl\nlambda_sd: 0.5\nepochs: 3\n")
    c = make_config(f)
    assert (c.name, c.lambda_sd, c.epochs) == ("mine", 0.5, 3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"distill_loss": "kl"}, "distill_loss"),
        ({"labeled_fraction": 0}, "labeled_fraction"),
        ({"lamda_sd": 1}, "unknown field"),
        ({"schedule": "two-stage"}, "nothing to distil"),
    ],
)
def test_bad_configs_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("no-dstl", **overrides)


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError, match="no-dstl"):
        make_config("bogus")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["lambda_sd"])
    assert set(PRESETS) >= {"no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl", "conf-vid-sp-dstl", "distill-ce", "two-stage-train"}
