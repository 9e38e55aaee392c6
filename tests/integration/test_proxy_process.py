"""``twistd dssr`` serving an interactive job as a site runs it: the proxy on its own
listener (``DSSR_PROXY_LISTEN``, here TLS) with host-based job URLs
(``JARVICE_JOBS_DOMAIN``), apart from upstream's API listener."""

import datetime
import os
import socket
import ssl
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import threads

from tests.integration.sshd import free_port
from tests.integration.test_faults import ProcessCase
from tests.integration.test_interactive import InteractiveApps, request

DOMAIN = "jobs.test"


def self_signed(directory: str, domain: str) -> tuple[str, str]:
    """A certificate for ``*.domain`` that is its own CA: (certificate path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    certificate_path = os.path.join(directory, "proxy.crt")
    key_path = os.path.join(directory, "proxy.key")
    with open(certificate_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return certificate_path, key_path


def tls_get(port: int, host: str, target: str, authority: str,
            cookie: str | None = None) -> tuple[int, dict, bytes]:
    """GET ``target`` from 127.0.0.1:``port`` over TLS as a browser at ``host`` would
    (SNI, certificate checked against ``authority``): (status, headers, body)."""
    context = ssl.create_default_context(cafile=authority)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw, \
            context.wrap_socket(raw, server_hostname=host.partition(":")[0]) as tls:
        extra = f"Cookie: {cookie}\r\n" if cookie else ""
        tls.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}"
                    "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


class ProxyListenerTests(InteractiveApps, ProcessCase):
    timeout = 300

    async def test_a_host_routed_app_over_tls(self):
        port = free_port()
        certificate, key = self_signed(self.directory, DOMAIN)
        self.environment = {
            **self.environment,
            "JARVICE_JOBS_DOMAIN": f"https://job-$.{DOMAIN}:{port}",
            "DSSR_PROXY_LISTEN": (f"ssl:{port}:interface=127.0.0.1:privateKey={key}"
                                  f":certKey={certificate}"),
        }
        await self.dssr("proxy")
        ref, url, password = await self.start_app("tls")
        parts = urlsplit(url)
        host = f"job-{ref['number']}.{DOMAIN}:{port}"
        self.assertEqual((parts.scheme, parts.netloc, parts.path), ("https", host, "/"))
        cookie = self.cookie(ref, url)

        # The URL upstream hands out: its token moves into a cookie for this host only.
        status, headers, _ = await threads.deferToThread(
            tls_get, port, host, f"/?{parts.query}", certificate)
        self.assertEqual((status, headers["location"]), (302, f"https://{host}/"))
        self.assertIn(f"{cookie}; Path=/; HttpOnly", headers["set-cookie"])
        self.assertIn("; Secure", headers["set-cookie"])

        status, _, page = await threads.deferToThread(tls_get, port, host, "/", certificate,
                                                      cookie)
        self.assertEqual(status, 200, page)
        self.assertIn(f"password {password};".encode(), page)

        # Another job's host with this job's cookie, a host of no job: never the app.
        other = f"job-{ref['number'] + 1}.{DOMAIN}:{port}"
        status, _, page = await threads.deferToThread(tls_get, port, other, "/", certificate,
                                                      cookie)
        self.assertIn(status, (403, 404))
        self.assertNotIn(password.encode(), page)
        status, _, _ = await threads.deferToThread(tls_get, port, f"www.{DOMAIN}:{port}",
                                                   "/live", certificate)
        self.assertEqual(status, 404)

        # The API listener serves no job traffic, whatever the request names.
        api_port = urlsplit(self.base).port
        status, _, page = await threads.deferToThread(request, api_port, "/", cookie,
                                                      host=host)
        self.assertNotEqual(status, 200)
        self.assertNotIn(password.encode(), page)
