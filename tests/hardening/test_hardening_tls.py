"""Optional TLS (standard `ssl`, TLS 1.2+): end to end through the SDK (async, sync, pool) and the
operator CLI; with a client CA, a client without a certificate is refused and a participant's
hello must match its certificate's subject CN. Certificates are made at test time with the
openssl command-line tool (the tests skip, saying so, where it is missing)."""
import asyncio
import json
import socket
import ssl
import subprocess
import sys

import pytest

from payswitch.client import AsyncClient, Client
from payswitch.client.pool import AsyncPool
from support.switch_process import SwitchProcess
from support.wire import WireClient

from hardening.net_support import ROOT, TlsWireClient, client_context, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_switch(tmp_path, stopper, pki, client_ca: bool) -> SwitchProcess:
    args = ["--tls-cert", str(pki["server.pem"]), "--tls-key", str(pki["server.key"])]
    if client_ca:
        args += ["--tls-client-ca", str(pki["ca.pem"])]
    switch = SwitchProcess(tmp_path / "data", extra_args=tuple(args)).start()
    stopper(switch)
    return switch


def cli(switch, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", "--port", str(switch.port),
                           "--data-dir", str(switch.data_dir), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_tls_end_to_end_with_the_sdk_and_the_cli(tmp_path, stopper, pki):
    switch = tls_switch(tmp_path, stopper, pki, client_ca=False)
    context = client_context(pki, None)
    with Client(switch.host, switch.port, token=switch.admin_token, ssl=context) as admin:
        created = admin.create_participants([{"id": "bank-a", "name": "Bank A"},
                                             {"id": "bank-b", "name": "Bank B"}])
        tokens = {"bank-a": created[0].token, "bank-b": created[1].token}
        admin.create_accounts([
            {"id": "a-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
            {"id": "b-1", "participant": "bank-b", "currency": "USD"}])

    async def as_bank_a():
        async with await AsyncClient.connect(switch.host, switch.port, participant="bank-a",
                                             token=tokens["bank-a"], ssl=context) as bank_a:
            return await bank_a.transfer("tls-1", "a-1", "b-1", 250)

    assert asyncio.run(as_bank_a()).status == "created"

    async def pooled():
        async with AsyncPool(2, host=switch.host, port=switch.port, participant="bank-b",
                             token=tokens["bank-b"], ssl=context) as pool:
            return await pool.lookup_accounts(["b-1"])

    assert asyncio.run(pooled())[0].balance == 250
    # the CLI: --tls-ca alone (no client certificate needed here)
    done = cli(switch, "--tls-ca", str(pki["ca.pem"]), "--json", "balance", "a-1", "b-1")
    assert done.returncode == 0, done.stderr
    assert {a["id"]: a["balance"] for a in json.loads(done.stdout)} == \
        {"a-1": -250, "b-1": 250}
    # plain TCP to the TLS port gets no reply, and does not disturb the switch
    with WireClient(switch.host, switch.port, timeout_s=5) as plain:
        plain.send({"id": 1, "op": "ping"})
        with pytest.raises((ConnectionError, socket.timeout, OSError)):
            plain.recv_body()
    # a client that does not trust the switch's CA refuses it
    with pytest.raises(ssl.SSLCertVerificationError):
        TlsWireClient(switch.host, switch.port, ssl.create_default_context())
    with TlsWireClient(switch.host, switch.port, context) as raw:
        assert raw.call("ping") == {}
        assert raw.sock.version() in ("TLSv1.2", "TLSv1.3")
    listening = switch.log_events("listening")[0]
    assert listening["tls"] == "server"


def test_with_a_client_ca_a_client_without_a_certificate_is_refused(tmp_path, stopper, pki):
    switch = tls_switch(tmp_path, stopper, pki, client_ca=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with TlsWireClient(switch.host, switch.port, client_context(pki, None)) as client:
            client.call("ping")  # TLS 1.3 reports the refusal on the first read
    with TlsWireClient(switch.host, switch.port, client_context(pki, "admin")) as admin:
        admin.hello("admin", switch.admin_token)
        assert admin.call("stats")["connections"] == 1
    # the CLI with a client certificate, and without
    flags = ["--tls-ca", str(pki["ca.pem"])]
    done = cli(switch, *flags, "--tls-cert", str(pki["admin.pem"]), "--tls-key",
               str(pki["admin.key"]), "stats")
    assert done.returncode == 0, done.stderr
    refused = cli(switch, *flags, "stats")
    assert refused.returncode == 2 and "no answer from the switch" in refused.stderr


def test_a_certificate_for_bank_a_cannot_hello_as_bank_b(tmp_path, stopper, pki):
    switch = tls_switch(tmp_path, stopper, pki, client_ca=True)
    with TlsWireClient(switch.host, switch.port, client_context(pki, "admin")) as admin:
        admin.hello("admin", switch.admin_token)
        results = admin.call("create_participants", {"participants": [
            {"id": "bank-a", "name": "Bank A"}, {"id": "bank-b", "name": "Bank B"}]})["results"]
        tokens = {"bank-a": results[0]["token"], "bank-b": results[1]["token"]}
    with TlsWireClient(switch.host, switch.port, client_context(pki, "bank-a")) as bank_a:
        # bank-b's own, correct token does not help: the certificate says bank-a
        reply = bank_a.request("hello", {"participant": "bank-b", "token": tokens["bank-b"]})
        assert reply["ok"] is False and reply["error"]["code"] == "unauthenticated"
        reply = bank_a.request("hello", {"participant": "admin", "token": switch.admin_token})
        assert reply["ok"] is False and reply["error"]["code"] == "unauthenticated"
        assert bank_a.request("stats")["error"]["code"] == "unauthenticated"
        assert bank_a.hello("bank-a", tokens["bank-a"])["participant"] == "bank-a"
    # and through the SDK
    context = client_context(pki, "bank-a")
    with pytest.raises(Exception) as refused:
        Client(switch.host, switch.port, participant="bank-b", token=tokens["bank-b"],
               ssl=context, retry_deadline_s=0)
    assert getattr(refused.value, "code", None) == "unauthenticated"
    failures = switch.log_events("hello_failed")
    assert [(f["participant"], f["reason"], f["certificate_cn"]) for f in failures] == [
        ("bank-b", "certificate", "bank-a"), ("admin", "certificate", "bank-a"),
        ("bank-b", "certificate", "bank-a")]
    for token in (*tokens.values(), switch.admin_token):
        assert token not in switch.log()
