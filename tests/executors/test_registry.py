"""Image references and registry credentials."""

import base64
import json

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.executors.config import ExecutorSettings
from dssr.executors.header import parse_header
from dssr.executors.registry import (
    DOCKER_HUB,
    Credentials,
    Images,
    image_registry,
    images,
    in_global_registries,
    init_tag,
    registry_credentials,
    server_registry,
)
from tests.executors.sample import (
    APP_PASSWORD,
    APP_USER,
    OTHER_PASSWORD,
    OWNER_PASSWORD,
    auth,
    ctrsecret,
    template,
)

REPO = "us-docker.pkg.dev/jarvice/images/ubuntu:24.04"


class InitImageTests(SynchronousTestCase):
    def test_init_image(self):
        settings = ExecutorSettings(system_registry="reg.example", system_repo_base="sys/img",
                                    images_tag="jarvice-3.24.5")
        params = parse_header(template(JOBOBJ_APPDEFVERSION="3"))
        self.assertEqual(images(params, settings).init,
                         "reg.example/sys/img/initv3:jarvice-3.24.5")

    def test_tag_architecture_swapped_for_the_jobs(self):
        self.assertEqual(init_tag("jarvice-master-amd64", "arm64"), "jarvice-master-arm64")
        self.assertEqual(init_tag("3.24-arm64", "x86_64"), "3.24-amd64")
        self.assertEqual(init_tag("3.24-amd64", "aarch64"), "3.24-arm64")
        self.assertEqual(init_tag("3.24-amd64", "ppc64le"), "3.24-ppc64le")

    def test_tag_kept(self):
        self.assertEqual(init_tag("jarvice-master", "arm64"), "jarvice-master")
        self.assertEqual(init_tag("3.24-amd64", ""), "3.24-amd64")
        self.assertEqual(init_tag("amd64", "arm64"), "amd64")


class AppImageTests(SynchronousTestCase):
    def test_remote(self):
        self.assertEqual(images(parse_header(template()), ExecutorSettings()).app, REPO)

    def test_local_registry(self):
        settings = ExecutorSettings(local_registry="cache:5000", local_repo_base="jarvice")
        self.assertEqual(images(parse_header(template()), settings).app,
                         "cache:5000/jarvice/jarvice-ubuntu:latest")

    def test_local_registry_without_base(self):
        settings = ExecutorSettings(local_registry="cache:5000")
        self.assertEqual(images(parse_header(template()), settings).app,
                         "cache:5000/jarvice-ubuntu:latest")

    def test_local_registry_needs_nae(self):
        settings = ExecutorSettings(local_registry="cache:5000")
        error = self.assertRaises(BadRequest, images,
                                  parse_header(template(JOBOBJ_NAE=None)), settings)
        self.assertIn("JOBOBJ_NAE", error.message)

    def test_remote_needs_repo(self):
        error = self.assertRaises(BadRequest, images,
                                  parse_header(template(JOBOBJ_REPO="")), ExecutorSettings())
        self.assertIn("JOBOBJ_REPO", error.message)

    def test_registry_proxy(self):
        settings = ExecutorSettings(registry_proxy_port=5001, registry_proxy_repos=(
            "quay.io/other", "us-docker.pkg.dev/jarvice"))
        self.assertEqual(images(parse_header(template()), settings).app,
                         "localhost:5001/jarvice/images/ubuntu:24.04")

    def test_registry_proxy_no_match_or_no_repos(self):
        for repos in ((), ("quay.io/",), ("",)):
            settings = ExecutorSettings(registry_proxy_port=5001, registry_proxy_repos=repos)
            self.assertEqual(images(parse_header(template()), settings).app, REPO)

    def test_proxy_repos_ignored_without_port(self):
        settings = ExecutorSettings(registry_proxy_repos=("us-docker.pkg.dev",))
        self.assertEqual(images(parse_header(template()), settings),
                         Images(images(parse_header(template()), settings).init, REPO))

    def test_global_registries(self):
        settings = ExecutorSettings(job_global_registries=("docker.io/nimbix/", " quay.io"))
        self.assertTrue(in_global_registries("quay.io/a/b:1", settings))
        self.assertTrue(in_global_registries("docker.io/nimbix/x", settings))
        self.assertFalse(in_global_registries("quay.io.evil/a", settings))
        self.assertFalse(in_global_registries("docker.io/other/x", settings))
        self.assertFalse(in_global_registries("anything", ExecutorSettings()))
        empty = ExecutorSettings(job_global_registries=("",))
        self.assertFalse(in_global_registries("anything", empty))


class RegistryTests(SynchronousTestCase):
    def test_image_registry(self):
        self.assertEqual(image_registry("quay.io/a/b"), "quay.io")
        self.assertEqual(image_registry("localhost:5000/b"), "localhost:5000")
        self.assertEqual(image_registry("myreg.example/b"), "myreg.example")
        self.assertEqual(image_registry("nimbix/ubuntu"), DOCKER_HUB)
        self.assertEqual(image_registry("ubuntu"), DOCKER_HUB)
        self.assertEqual(image_registry("docker.io/nimbix/ubuntu"), DOCKER_HUB)

    def test_server_registry(self):
        self.assertEqual(server_registry("https://index.docker.io/v1/"), DOCKER_HUB)
        self.assertEqual(server_registry("https://us-docker.pkg.dev"), "us-docker.pkg.dev")
        self.assertEqual(server_registry("quay.io"), "quay.io")
        self.assertEqual(server_registry("quay.io/v2/"), "quay.io")
        self.assertEqual(server_registry("localhost:5000"), "localhost:5000")
        self.assertEqual(server_registry("Docker.IO"), DOCKER_HUB)


class CredentialsTests(SynchronousTestCase):
    def test_from_ctrsecret(self):
        self.assertEqual(registry_credentials(parse_header(template())),
                         Credentials(APP_USER, APP_PASSWORD))

    def test_other_registry(self):
        params = parse_header(template(JOBOBJ_REPO="quay.io/o/app:1"))
        self.assertEqual(registry_credentials(params), Credentials("other", OTHER_PASSWORD))

    def test_password_with_colon(self):
        secret = ctrsecret({"us-docker.pkg.dev": auth("u", "a:b:c")})
        params = parse_header(template(JOBOBJ_CTRSECRET=secret))
        self.assertEqual(registry_credentials(params), Credentials("u", "a:b:c"))

    def test_username_password_entry(self):
        secret = ctrsecret({"us-docker.pkg.dev": {"username": "u", "password": "p"}})
        params = parse_header(template(JOBOBJ_CTRSECRET=secret))
        self.assertEqual(registry_credentials(params), Credentials("u", "p"))

    def test_docker_hub_aliases(self):
        secret = ctrsecret({"https://index.docker.io/v1/": auth("hub", "hubpw")})
        for repo in ("nimbix/ubuntu", "docker.io/nimbix/ubuntu"):
            params = parse_header(template(JOBOBJ_REPO=repo, JOBOBJ_CTRSECRET=secret))
            self.assertEqual(registry_credentials(params), Credentials("hub", "hubpw"))

    def test_docker_secret_preferred_when_it_names_the_registry(self):
        secret = json.dumps({"server": "https://us-docker.pkg.dev", "username": "owner",
                             "password": OWNER_PASSWORD})
        params = parse_header(template(JOBOBJ_DOCKER_SECRET=secret))
        self.assertEqual(registry_credentials(params), Credentials("owner", OWNER_PASSWORD))

    def test_docker_secret_for_another_registry_ignored(self):
        secret = json.dumps({"server": "quay.io", "username": "owner", "password": "x"})
        params = parse_header(template(JOBOBJ_DOCKER_SECRET=secret))
        self.assertEqual(registry_credentials(params), Credentials(APP_USER, APP_PASSWORD))

    def test_none(self):
        params = parse_header(template(JOBOBJ_CTRSECRET=None, JOBOBJ_REPO="ghcr.io/a/b"))
        self.assertEqual(registry_credentials(params), Credentials())
        self.assertEqual(registry_credentials(parse_header(template(JOBOBJ_REPO=None))),
                         Credentials())

    def test_garbled_ctrsecret_refused_without_echo(self):
        for garbled in ("not base64!", "bm90IGpzb24=", ctrsecret({}).replace("e", "")):
            params = parse_header(template(JOBOBJ_CTRSECRET=garbled))
            error = self.assertRaises(BadRequest, registry_credentials, params)
            self.assertIn("JOBOBJ_CTRSECRET", error.message)
            self.assertNotIn(garbled, error.message)

    def test_auths_not_a_map(self):
        garbled = base64.b64encode(b'{"auths": []}').decode()
        params = parse_header(template(JOBOBJ_CTRSECRET=garbled))
        self.assertRaises(BadRequest, registry_credentials, params)

    def test_unusable_matching_entry_refused(self):
        for entry in ({"auth": "bm9jb2xvbg=="}, {"auth": "%%%"}, {}, "x"):
            params = parse_header(template(
                JOBOBJ_CTRSECRET=ctrsecret({"us-docker.pkg.dev": entry})))
            error = self.assertRaises(BadRequest, registry_credentials, params)
            self.assertIn("us-docker.pkg.dev", error.message)

    def test_unusable_other_entry_ignored(self):
        secret = ctrsecret({"quay.io": {}, "us-docker.pkg.dev": auth("u", "p")})
        params = parse_header(template(JOBOBJ_CTRSECRET=secret))
        self.assertEqual(registry_credentials(params), Credentials("u", "p"))
