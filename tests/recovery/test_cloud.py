"""``cfbackup.cloud``, core's openstacksdk connection, against the emulator: chosen by a cloud
name alone (as ``cfbackup firewall -s`` will), by a profile and a plugin's section, and its
failures as one sentence."""

from __future__ import annotations

import pytest
from recovery_support import SDK_DEPRECATIONS, load_config

from cfbackup import cloud
from cfbackup.errors import BackendError, ConfigError

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]


def _flavors(conn) -> list[str]:
    with cloud.cloud_errors("listing flavors"):
        return sorted(f.name for f in conn.compute.flavors())


def test_a_cloud_name_alone_or_os_cloud_connects(clouds, monkeypatch):
    assert _flavors(cloud.connect(cloud="emulator")) == ["m1.large", "m1.medium", "m1.small"]
    with pytest.raises(ConfigError, match="no cloud named: give a clouds.yaml entry's name"):
        cloud.connect()
    monkeypatch.setenv("OS_CLOUD", "emulator")
    assert len(_flavors(cloud.connect())) == 3


def test_an_unknown_cloud_is_a_config_error_naming_clouds_yaml(clouds):
    with pytest.raises(ConfigError) as error:
        cloud.connect(cloud="nowhere")
    assert "nowhere" in error.value.message and "check clouds.yaml and OS_CLOUD" in (
        error.value.message
    )


def test_a_plugin_section_comes_before_the_profiles_swift_cloud(clouds, write_config):
    config = load_config(
        write_config(
            {
                "web": {
                    "swift": 'cloud = "nowhere"\n',
                    "server_image": 'cloud = "emulator"\napi_timeout = 7\n',
                }
            }
        )
    )
    profile = config.profile("web")
    settings = cloud.cloud_settings(profile, section="server_image")
    assert settings == {"cloud": "emulator", "api_timeout": 7}
    assert len(_flavors(cloud.connect(profile, section="server_image"))) == 3
    assert cloud.cloud_settings(profile) == {"cloud": "nowhere", "api_timeout": 60}
    assert cloud.cloud_settings(profile, cloud="other")["cloud"] == "other"


def test_a_profile_without_keystone_credentials_names_the_setting(clouds, write_config):
    profile = load_config(write_config({"web": {}})).profile("web")
    with pytest.raises(ConfigError) as error:
        cloud.connect(profile, section="server_image")
    assert error.value.message.startswith("profiles.web.server_image: ")
    assert "set server_image.cloud to a clouds.yaml entry (or export OS_CLOUD)" in (
        error.value.message
    )


def test_a_hanging_api_is_a_timeout_naming_the_setting_given(clouds, emulator):
    emulator.hang("GET", r"/flavors", 3)
    conn = cloud.connect(cloud="emulator", api_timeout=1)
    for setting, fix in ((None, "check the endpoint and the network."),
                         ("x.api_timeout", "check the endpoint, or raise x.api_timeout.")):
        with pytest.raises(BackendError) as error:
            with cloud.cloud_errors("listing flavors", timeout_setting=setting):
                list(conn.compute.flavors())
        assert "listing flavors: the cloud did not answer in time" in error.value.message
        assert error.value.message.endswith(fix)
