/**
 * A SIGTERM answers the UDP queries sent before it, in one process and with two DNS workers: the
 * queries the kernel holds in the socket's receive queue, not yet read, are read and answered
 * before the socket closes (docs/dns.md, "Shutdown"). The server is stopped (SIGSTOP) while the
 * queries are sent, so that all of them wait unread when its SIGTERM comes; then it runs on.
 * Real processes, real sockets.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { startServer } from '../helpers/server.js'
import { buildQuery, parseReply, RCODE, TYPE } from '../helpers/wire.js'

/** How many datagrams the kernel dropped on arrival at the UDP socket bound to 127.0.0.1:`port` (its receive queue full): /proc/net/udp's drops column. */
async function drops(port: number): Promise<number> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const lines = (await readFile('/proc/net/udp', 'utf8')).split('\n').filter((l) => l.trim().split(/\s+/)[1] === local)
  assert.equal(lines.length, 1, `one UDP socket on 127.0.0.1:${port} (${lines.length})`)
  return Number(lines[0]!.trim().split(/\s+/).at(-1))
}

const N = 200

for (const workers of [1, 2]) {
  describe(`a SIGTERM with --workers ${workers}`, () => {
    test(`answers the ${N} UDP queries the socket held unread when it came, then exits 0`, async (t) => {
      // Its own process group, so that the stop and the SIGTERM reach every worker at once.
      const server = await startServer({ args: ['--workers', String(workers)], detached: true })
      const pid = server.proc.pid!
      const client = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 })
      try {
        client.bind(0, '127.0.0.1')
        await once(client, 'listening')
        const answered = new Map<number, number>()
        client.on('message', (m: Buffer) => {
          const r = parseReply(m)
          answered.set(r.id, r.rcode)
        })
        const send = (id: number) => new Promise<void>((resolve, reject) => client.send(buildQuery({ id, name: 'gslb.example.test', type: TYPE.SOA }), server.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))
        // Answering before the stop.
        await send(N)
        assert.ok(await waitFor(() => answered.has(N), 5000), 'the first query answered')
        answered.clear()

        process.kill(-pid, 'SIGSTOP')
        let lost: number
        try {
          const before = await drops(server.port)
          for (let id = 0; id < N; id++) await send(id)
          // A datagram sent over loopback is in the receive queue when send() returns, or dropped.
          lost = (await drops(server.port)) - before
          process.kill(-pid, 'SIGTERM')
        } finally {
          process.kill(-pid, 'SIGCONT')
        }
        const resumed = performance.now()
        assert.ok(lost < N / 2, `${lost} of ${N} dropped by the kernel on arrival (a receive queue too small for the test)`)
        const [code] = (server.proc.exitCode !== null ? [server.proc.exitCode] : await once(server.proc, 'exit')) as [number | null]
        const took = performance.now() - resumed
        assert.equal(code, 0, server.stderr())
        // Every reply was sent before the exit: read by this process within a few turns of its loop.
        await waitFor(() => answered.size >= N - lost, 2000)
        assert.equal(answered.size, N - lost, `every query the socket held is answered once (${lost} dropped on arrival)`)
        for (const [id, rcode] of answered) assert.equal(rcode, RCODE.NOERROR, `query ${id}`)
        assert.ok(took < 2500, `exited ${took.toFixed(0)} ms after it ran on`)
        t.diagnostic(`${answered.size} of ${N} answered (${lost} dropped on arrival), exit ${took.toFixed(0)} ms after SIGCONT`)
      } finally {
        client.close()
        await server.stop()
      }
    })
  })
}

/** Whether `ok()` holds within `ms` (checked every 5 ms). */
async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  while (!ok()) {
    if (performance.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 5))
  }
  return true
}
