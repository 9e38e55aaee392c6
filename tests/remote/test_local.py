"""LocalRemote's command environment: DSSR's own environment stays out."""

import pwd

from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.local import command_environment

ACCOUNT = pwd.struct_passwd(("kirby", "x", 1000, 1000, "", "/home/kirby", "/bin/bash"))


class CommandEnvironmentTests(SynchronousTestCase):
    def test_only_the_minimum_is_passed_on(self):
        environ = {"PATH": "/opt/dssr/bin:/usr/bin", "LANG": "C.UTF-8",
                   "SLURM_CONF": "/etc/slurm-site/slurm.conf", "HOME": "/var/lib/dssr",
                   "USER": "dssr", "JARVICE_SCHED_SERVER_KEY": "u:server-key",
                   "JARVICE_DOCKER_PASSWORD": "cGFzcw==", "DSSR_SSH_PKEY_PASSPHRASE": "pp",
                   "LD_PRELOAD": "/tmp/x.so", "SLURM_ACCOUNT": "other"}
        self.assertEqual(command_environment(environ, ACCOUNT), {
            "PATH": "/opt/dssr/bin:/usr/bin", "LANG": "C.UTF-8",
            "SLURM_CONF": "/etc/slurm-site/slurm.conf", "HOME": "/home/kirby",
            "USER": "kirby", "LOGNAME": "kirby"})

    def test_a_path_even_when_dssr_has_none(self):
        self.assertEqual(command_environment({}, ACCOUNT), {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/kirby", "USER": "kirby",
            "LOGNAME": "kirby"})
