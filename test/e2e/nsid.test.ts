/**
 * The name server identifier (RFC 5001), end to end: `serve --nsid` with two DNS workers, asked
 * with the real `dig +nsid` over UDP and TCP. The NSID is in the OPT of every answer form (data,
 * NXDOMAIN, REFUSED, truncated) to a query that asks for it, and nowhere else; the rest of the reply
 * is what the same query without the option gets. The hot path does not answer NSID queries, so
 * asking twice (a cache hit without the option) must still carry it.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { dig, type DigResult } from '../helpers/dig.js'
import { ROOT, runCli, startServer, type RunningServer } from '../helpers/server.js'

// Static zones: no health check can change an answer between two queries of a comparison.
const ZONES = path.join(ROOT, 'test', 'fixtures', 'rfc')
const NAME = 'ns1.rfc.test'
const ID = 'ns1.fra.example'
/** dig's line for an NSID of `ID`: the octets in hex, then the text. */
const NSID_LINE = `; NSID: ${[...Buffer.from(ID)].map((b) => b.toString(16).padStart(2, '0')).join(' ')} ("${ID}")`

const nsidOf = (r: DigResult): string | null => /^; NSID: .*$/m.exec(r.raw)?.[0] ?? null
/** The reply without what the NSID option changes: its line and the message size. */
const rest = (r: DigResult) => ({ status: r.status, flags: r.flags, answer: r.answer.map((a) => a.data).sort(), authority: r.authority, edns: r.edns, clientSubnet: r.clientSubnet })

describe('NSID (RFC 5001)', () => {
  let server: RunningServer
  let plain: RunningServer
  before(async () => {
    server = await startServer({ zones: ZONES, args: ['--workers', '2', '--nsid', ID] })
    plain = await startServer({ zones: ZONES })
  })
  after(async () => {
    await server?.stop()
    await plain?.stop()
  })

  const ask = (s: RunningServer, ...args: string[]) => dig('127.0.0.1', s.port, ...args)

  for (const transport of ['+notcp', '+tcp']) {
    test(`a query with +nsid gets the server's NSID, asked again too; the reply is otherwise the same (${transport === '+tcp' ? 'TCP' : 'UDP'})`, async () => {
      for (const ecs of ['+subnet=81.2.69.0/24', '+subnet=2001:db8:1::/56', '+nocookie']) {
        const without = await ask(server, NAME, 'A', ecs, transport)
        for (let round = 0; round < 3; round++) {
          const r = await ask(server, NAME, 'A', ecs, transport, '+nsid')
          assert.equal(nsidOf(r), NSID_LINE, `${ecs} round ${round}`)
          assert.deepEqual(rest(r), rest(without), `${ecs} round ${round}`)
          assert.equal(r.size, without.size + 4 + ID.length, `${ecs}: the option's 4 octets and the identifier`)
        }
        assert.equal(nsidOf(without), null, `${ecs}: not asked, not sent`)
      }
    })
  }

  test('NXDOMAIN, NODATA, REFUSED and ANY carry it too', async () => {
    for (const [name, type, status] of [
      ['nope.rfc.test', 'A', 'NXDOMAIN'],
      ['rfc.test', 'TYPE999', 'NOERROR'],
      ['example.com', 'A', 'REFUSED'],
      ['rfc.test', 'ANY', 'NOERROR'],
    ] as const) {
      for (let round = 0; round < 2; round++) {
        const r = await ask(server, name, type, '+nsid', '+subnet=1.2.3.0/24')
        assert.equal(r.status, status, `${name} ${type}`)
        assert.equal(nsidOf(r), NSID_LINE, `${name} ${type} round ${round}`)
        assert.equal(r.clientSubnet, '1.2.3.0/24/0', `${name} ${type}: ECS echoed beside it`)
      }
    }
  })

  test('without EDNS there is no OPT to carry it: the reply is the plain one', async () => {
    const r = await ask(server, NAME, 'A', '+nsid', '+noedns')
    assert.equal(r.edns, null)
    assert.equal(nsidOf(r), null)
    assert.equal(r.status, 'NOERROR')
  })

  test('a server started without --nsid ignores the option (RFC 6891: unknown options are ignored)', async () => {
    const r = await ask(plain, NAME, 'A', '+nsid', '+subnet=8.8.8.0/24')
    assert.equal(nsidOf(r), null)
    assert.equal(r.status, 'NOERROR')
    assert.equal(r.answer.length, 1)
  })

  test('--nsid takes text or 0x and hex octets, and refuses anything else before starting', async () => {
    for (const bad of ['two words', '0x1', 'é', 'x'.repeat(129)]) {
      const r = await runCli(['serve', '--nsid', bad, '--zones', '/nonexistent'])
      assert.equal(r.code, 1, `--nsid ${JSON.stringify(bad)}: ${r.stderr}`)
      assert.match(r.stderr, /option '--nsid <id>' argument .* is invalid\. must be 1-128 printable ASCII characters/, bad)
    }
    const hex = await startServer({ zones: ZONES, args: ['--nsid', '0x00FF10'] })
    try {
      const r = await ask(hex, NAME, 'A', '+nsid')
      assert.match(nsidOf(r) ?? '', /^; NSID: 00 ff 10 /)
    } finally {
      await hex.stop()
    }
  })
})
