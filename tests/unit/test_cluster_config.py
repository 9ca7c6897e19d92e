"""cluster.yaml is a valid Ray cluster-launcher config (Ray's own validation)."""

from pathlib import Path

import yaml


def test_cluster_yaml_passes_ray_validation(no_ray):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((Path(__file__).parents[2] / "cluster.yaml").read_text())
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "local"


def test_serve_config_points_at_the_app_builder(no_ray):
    config = yaml.safe_load((Path(__file__).parents[2] / "serve_config.yaml").read_text())
    app = config["applications"][0]
    module, _, name = app["import_path"].partition(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), name))
    assert config["http_options"]["host"] == "127.0.0.1"
