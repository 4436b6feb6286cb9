/**
 * The worker thread of CheckThread (check-thread.ts): runs each round it is sent with the same
 * HttpCheck or TcpCheck the poller would run on its own event loop, and answers with the result.
 * Its event loop does nothing else, so a round's latency is the pool's and the network's, not the
 * time the result waited behind the DNS queries of a busy server's loop.
 */
import { parentPort } from 'node:worker_threads'
import { createCheck, RoundClients } from './check.js'
import type { CheckReply, CheckRequest } from './check-thread.js'

const port = parentPort
if (!port) throw new Error('check-worker.js runs as a worker thread of CheckThread')

const clients = new RoundClients()
/** The rounds in flight, by id: cancelled from the main thread when the poller aborts one. */
const inflight = new Map<number, AbortController>()

port.on('message', (req: CheckRequest) => {
  if (req.t === 'cancel') {
    inflight.get(req.id)?.abort()
    return
  }
  if (req.t === 'exit') {
    // For the tests of a thread that dies: the main thread must carry on without it.
    process.exit(req.code)
  }
  const ac = new AbortController()
  inflight.set(req.id, ac)
  createCheck(req.spec, clients)
    .run(ac.signal)
    .then(
      (result) => reply({ id: req.id, result }),
      // run() never rejects; were it to, the round is a failure with the reason.
      (err: unknown) => reply({ id: req.id, result: { ok: false, latencyMs: 0, error: err instanceof Error ? err.message : String(err) } }),
    )
    .finally(() => inflight.delete(req.id))
})

function reply(r: CheckReply): void {
  port!.postMessage(r)
}
