"""HTTPS served by Waypost itself: the certificate files, checked before serving and followed
while serving.

:func:`check_tls` loads the files as each worker will, so that a missing file or a key that does
not belong to the certificate is a usage error before the server starts, not a worker that dies.
:class:`CertificateReloader` then watches the two files; when a renewal (certbot and the like)
replaces them, it checks the new pair on a scratch context and only then loads it into the
server's context, so new connections get the new certificate and a half-written or mismatched
pair never replaces a good one.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from waypost.exceptions import SettingsError
from waypost.follow.reloading import file_signature

__all__ = ["CertificateReloader", "check_tls"]

logger = logging.getLogger("waypost.server")


def check_tls(cert: str | None, key: str | None) -> None:
    """Raise :class:`SettingsError` unless ``cert`` and ``key`` are both absent, or both readable
    PEM files holding a certificate (chain) and its unencrypted private key."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise SettingsError(
            f"{given} is set but {missing} is not; HTTPS needs both the certificate "
            "(--tls-cert) and its private key (--tls-key)"
        )
    _load(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), cert, key)


def _load(context: ssl.SSLContext, cert: str, key: str) -> None:
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path!r}: {exc.strerror or exc}") from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            detail = "the private key does not belong to the certificate"
        else:
            detail = f"not a PEM certificate and private key ({exc.reason or exc})"
        raise SettingsError(
            f"tls_cert {cert!r} / tls_key {key!r}: {detail}; give the certificate chain "
            "(-----BEGIN CERTIFICATE-----) and its unencrypted private key "
            "(-----BEGIN PRIVATE KEY-----)"
        ) from None


class CertificateReloader:
    """Loads a renewed certificate into ``context`` (the listening server's) once it checks out."""

    def __init__(self, context: ssl.SSLContext, cert: str, key: str) -> None:
        self.context, self.cert, self.key = context, cert, key
        self._seen = self._signature()
        #: How many renewals were loaded, and how many were refused.
        self.reloads = self.failures = 0

    def _signature(self) -> tuple[object, object]:
        return file_signature(self.cert), file_signature(self.key)

    def check(self) -> bool:
        """Load the files again if either changed since the last look; True when loaded."""
        seen = self._signature()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            # First on a scratch context: loading a bad pair into the live one could leave it
            # with the new certificate and the old key.
            check_tls(self.cert, self.key)
            self.context.load_cert_chain(self.cert, self.key)
        except (SettingsError, ssl.SSLError) as exc:
            self.failures += 1
            logger.error(
                "waypost: the renewed certificate was not loaded (still serving the "
                "previous one): %s",
                exc,
            )
            return False
        self.reloads += 1
        logger.info("waypost: loaded the renewed certificate %s", self.cert)
        return True
