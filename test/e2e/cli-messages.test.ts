/**
 * What the command line says to an operator who got something wrong: each case runs the real
 * `meridian` against real files and servers, and checks that the message says what to fix.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { runCli } from '../helpers/server.js'

test('explain --admin pointed at a server that is not Meridian\'s admin API says so, not "404:  Not Found"', async (t) => {
  // Another service on the port given (a web server, a proxy): it answers 404 with an empty body.
  const other = createServer((_req, res) => res.writeHead(404).end())
  other.listen(0, '127.0.0.1')
  await once(other, 'listening')
  t.after(() => other.close())
  const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
  const r = await runCli(['explain', 'www.gslb.example.test', '--client', '192.0.2.1', '--admin', url])
  assert.equal(r.code, 1)
  assert.equal(
    r.stderr,
    `meridian explain: ${url} answered GET /v1/explain with 404 Not Found, not as Meridian's admin API does: is --admin its address? (the log line "admin API listening" gives it, e.g. http://127.0.0.1:8053)\n`,
  )
})
