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
import { readdir, readFile, readlink } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { startServer } from '../helpers/server.js'
import { buildQuery, parseReply, RCODE, TYPE } from '../helpers/wire.js'

/** The inodes of the sockets `pid` and its child processes (DNS workers) hold: /proc/PID/fd links `socket:[INODE]`. */
async function socketInodes(pid: number): Promise<Set<string>> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean)
  const inodes = new Set<string>()
  for (const p of [String(pid), ...children]) {
    for (const fd of await readdir(`/proc/${p}/fd`).catch(() => [])) {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${p}/fd/${fd}`).catch(() => ''))
      if (m) inodes.add(m[1]!)
    }
  }
  return inodes
}

/**
 * How many datagrams the kernel dropped on arrival at the server's UDP socket on 127.0.0.1:`port`
 * (its receive queue full): the drops column of its row of /proc/net/udp, the row of that address
 * whose inode is one of the server's sockets (`inodes`), so that no other socket is ever read. The
 * kernel hands the table out 4 KB (31 rows) per read(): a socket made or closed by another process
 * between two reads can shift the rows, and the server's then comes twice or not at all (a probe
 * with 40 sockets churned beside one: 17 reads of 20,000). Such a read is read again.
 */
async function drops(port: number, inodes: ReadonlySet<string>): Promise<number> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  for (let read = 1; ; read++) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
    const rows = (await readFile('/proc/net/udp', 'utf8'))
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[1] === local && inodes.has(f[9]!))
    if (rows.length === 1) return Number(rows[0]!.at(-1))
    if (read === 20) assert.fail(`the server's UDP socket on 127.0.0.1:${port} (inode ${[...inodes].join(' or ')}) was in /proc/net/udp ${rows.length} times, 20 reads in a row`)
  }
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

        // The server's sockets (its workers' too): one of them is the one on 127.0.0.1:port.
        const inodes = await socketInodes(pid)
        process.kill(-pid, 'SIGSTOP')
        let lost: number
        try {
          const before = await drops(server.port, inodes)
          for (let id = 0; id < N; id++) await send(id)
          // A datagram sent over loopback is in the receive queue when send() returns, or dropped.
          lost = (await drops(server.port, inodes)) - before
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
