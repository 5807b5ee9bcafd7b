"""The scaler's gRPC port over TLS, as KEDA dials it with a ClusterTriggerAuthentication: the
server certificate from a mounted Secret's files, and with ca.crt beside them, only clients
holding a certificate that CA signed get an answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme

from inference_operator.scaler.decisions import Decision, Decisions
from inference_operator.scaler.server import ScalerServer, pb, services


@contextlib.contextmanager
def _serve(tls: Path, ca: trustme.CA) -> Iterator[tuple[int, trustme.CA]]:
    decisions = Decisions()
    decisions.put(("serving", "llama"), Decision(3, 3, 1e12))
    server = ScalerServer("127.0.0.1", 0, lambda _: None, decisions, tls_dir=str(tls))
    server.start()
    try:
        yield server.port, ca
    finally:
        server.stop(0)


def _secret_dir(tmp: Path, ca: trustme.CA, mutual: bool) -> Path:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (tmp / "tls.crt").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    (tmp / "tls.key").write_bytes(cert.private_key_pem.bytes())
    if mutual:
        (tmp / "ca.crt").write_bytes(ca.cert_pem.bytes())
    return tmp


@pytest.fixture
def mutual(tmp_path: Path) -> Iterator[tuple[int, trustme.CA]]:
    ca = trustme.CA()
    with _serve(_secret_dir(tmp_path, ca, mutual=True), ca) as served:
        yield served


def _ask(port: int, ca: trustme.CA, client: trustme.LeafCert | None) -> bool:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client.private_key_pem.bytes() if client else None,
        certificate_chain=client.cert_chain_pems[0].bytes() if client else None,
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        stub = services.ExternalScalerStub(channel)
        ref = pb.ScaledObjectRef(name="llama", namespace="serving")
        return bool(stub.IsActive(ref, timeout=5).result)


def test_mutual_tls_answers_a_client_the_ca_signed(mutual: tuple[int, trustme.CA]) -> None:
    port, ca = mutual
    assert _ask(port, ca, ca.issue_cert("keda"))


def test_mutual_tls_refuses_a_client_without_a_certificate(
    mutual: tuple[int, trustme.CA],
) -> None:
    port, ca = mutual
    with pytest.raises(grpc.RpcError) as e:
        _ask(port, ca, None)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_another_ca_signed(mutual: tuple[int, trustme.CA]) -> None:
    port, ca = mutual
    with pytest.raises(grpc.RpcError):
        _ask(port, ca, trustme.CA().issue_cert("intruder"))


def test_server_only_tls_answers_without_a_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    with _serve(_secret_dir(tmp_path, ca, mutual=False), ca) as (port, _):
        assert _ask(port, ca, None)


def test_plaintext_clients_get_no_answer_from_a_tls_port(
    mutual: tuple[int, trustme.CA],
) -> None:
    port, _ = mutual
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = services.ExternalScalerStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.IsActive(pb.ScaledObjectRef(name="llama", namespace="serving"), timeout=5)
