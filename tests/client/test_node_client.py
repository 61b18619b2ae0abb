"""A real Node.js client (net module, plain JSON.parse) pages through an account whose transfers
are 1 ns apart: with `next_cursor` it sees every transfer exactly once; with the docs' exact
parser it reads every timestamp exactly; with the numeric `next` (rounded by JSON.parse) it goes
wrong, which is why `next_cursor` exists."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from payswitch.protocol.values import MAX_ITEMS

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs `node` on PATH to run a JS client")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
PAGE_SIZE = 97  # not a divisor of the count, nor of 256 (the spacing of doubles near 2^60)
NODE_TIMEOUT_S = 120

# Framing: 4-byte big-endian length, then a JSON body. Replies come in request order.
CLIENT_JS = r"""
const net = require('net');
const [port, token, account, pageSize, mode] = process.argv.slice(2);
const maxPages = Number(process.argv[7]);
__PARSE_EXACT__
const sock = net.connect(Number(port), '127.0.0.1');
let buffer = Buffer.alloc(0);
const waiting = [];
sock.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  while (buffer.length >= 4) {
    const length = buffer.readUInt32BE(0);
    if (buffer.length < 4 + length) break;
    const body = buffer.subarray(4, 4 + length).toString('utf8');
    buffer = buffer.subarray(4 + length);
    waiting.shift()(body);
  }
});
let nextId = 1;
function call(op, args) {
  return new Promise((resolve) => {
    const body = Buffer.from(JSON.stringify({id: nextId++, op, args}));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    waiting.push(resolve);
    sock.write(Buffer.concat([head, body]));
  });
}
(async () => {
  const hello = JSON.parse(await call('hello', {participant: 'admin', token}));
  if (!hello.ok) throw new Error('hello failed: ' + JSON.stringify(hello));
  const ids = [], timestamps = [];
  let after = null, pages = 0;
  while (pages < maxPages) {
    const args = {account, limit: Number(pageSize)};
    if (after !== null) args.after = after;
    const text = await call('get_account_transfers', args);
    const reply = mode === 'exact' ? parseExact(text) : JSON.parse(text);
    if (!reply.ok) throw new Error('get_account_transfers failed: ' + text);
    pages += 1;
    for (const t of reply.result.transfers) {
      ids.push(t.id);
      timestamps.push(String(t.timestamp));
    }
    after = mode === 'cursor' ? reply.result.next_cursor : reply.result.next;
    if (after === null) break;
  }
  console.log(JSON.stringify({ids, timestamps, pages, finished: after === null}));
  sock.end();
})().catch((error) => { console.error(error.stack); process.exit(1); });
"""


def docs_parse_exact() -> str:
    """The `parseExact` snippet of docs/protocol.md, so the docs are what is tested."""
    found = re.search(r"```js\n(\s*// Integers of 16\+ digits.*?)```", DOCS.read_text(), re.S)
    assert found, "docs/protocol.md lost its parseExact snippet"
    return found.group(1)


@pytest.fixture
def account_1ns_apart(admin):
    """Account `dst` with MAX_ITEMS transfers from one create_transfers: consecutive ns."""
    assert admin.request("create_participants", {"participants": [
        {"id": "bank-a", "name": "Bank A"}]})["ok"]
    assert admin.request("create_accounts", {"accounts": [
        {"id": "src", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
        {"id": "dst", "participant": "bank-a", "currency": "USD"}]})["ok"]
    items = [{"id": f"t{i:05d}", "debit_account": "src", "credit_account": "dst", "amount": 1}
             for i in range(MAX_ITEMS)]
    results = admin.request("create_transfers", {"transfers": items})["result"]["results"]
    timestamps = [r["timestamp"] for r in results]
    assert [r["status"] for r in results] == ["created"] * MAX_ITEMS
    assert timestamps == list(range(timestamps[0], timestamps[0] + MAX_ITEMS))
    assert timestamps[0] > 2**53  # what makes plain JSON.parse lossy
    return [item["id"] for item in items], [str(t) for t in timestamps]


def run_node(tmp_path, switch, mode: str, max_pages: int) -> dict:
    script = tmp_path / "pager.js"
    script.write_text(CLIENT_JS.replace("__PARSE_EXACT__", docs_parse_exact()))
    done = subprocess.run(
        [NODE, str(script), str(switch.port), switch.admin_token, "dst", str(PAGE_SIZE), mode,
         str(max_pages)], capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def expected_pages() -> int:
    return -(-MAX_ITEMS // PAGE_SIZE)


def test_node_pages_with_next_cursor_and_sees_every_transfer_once(
        tmp_path, switch, account_1ns_apart):
    ids, _ = account_1ns_apart
    seen = run_node(tmp_path, switch, "cursor", max_pages=10 * expected_pages())
    assert seen["finished"]
    assert seen["ids"] == ids  # every transfer, exactly once, oldest first
    assert seen["pages"] == expected_pages()


def test_node_reads_exact_timestamps_with_the_documented_parser(
        tmp_path, switch, account_1ns_apart):
    ids, timestamps = account_1ns_apart
    seen = run_node(tmp_path, switch, "exact", max_pages=10 * expected_pages())
    assert seen["finished"]
    assert (seen["ids"], seen["timestamps"]) == (ids, timestamps)


def test_node_paging_with_the_rounded_numeric_next_goes_wrong(
        tmp_path, switch, account_1ns_apart):
    ids, _ = account_1ns_apart
    seen = run_node(tmp_path, switch, "number", max_pages=3 * expected_pages())
    assert seen["ids"] != ids  # overlapping or skipped pages, or no end in sight
