/**
 * Check specs: defaults, validation with the expected error text, and the stable key that makes
 * identical specs share one schedule.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkKey, resolveSpec, type CheckSpec } from '../../src/health/spec.js'

const base: CheckSpec = { kind: 'http', address: '127.0.1.1', port: 8080 }

test('defaults are applied: GET /healthz, expect 200, 5000/2000 ms, rise 2, fall 3', () => {
  assert.deepEqual(resolveSpec(base), {
    kind: 'http',
    address: '127.0.1.1',
    port: 8080,
    url: 'http://127.0.1.1:8080/healthz',
    method: 'GET',
    expect: [200],
    intervalMs: 5000,
    timeoutMs: 2000,
    rise: 2,
    fall: 3,
  })
})

test('https specs get verify on by default and keep their servername', () => {
  const r = resolveSpec({ kind: 'https', address: '127.0.1.1', port: 443, servername: 'www.example.test', host: 'www.example.test' })
  assert.equal(r.url, 'https://127.0.1.1/healthz')
  assert.equal(r.port, 443)
  assert.equal(r.verify, true)
  assert.equal(r.servername, 'www.example.test')
  assert.equal(r.host, 'www.example.test')
})

test('a tcp spec drops the HTTP fields, so they cannot split its key', () => {
  const r = resolveSpec({ kind: 'tcp', address: '127.0.1.1', port: 443, path: '/x', host: 'h', expect: [204] })
  assert.deepEqual(r, { kind: 'tcp', address: '127.0.1.1', port: 443, intervalMs: 5000, timeoutMs: 2000, rise: 2, fall: 3 })
  assert.equal(checkKey({ kind: 'tcp', address: '127.0.1.1', port: 443, path: '/x' }), checkKey({ kind: 'tcp', address: '127.0.1.1', port: 443 }))
})

test('url overrides address, port and path; IPv6 addresses are bracketed', () => {
  const r = resolveSpec({ kind: 'http', address: 'ignored', port: 1, url: 'http://127.0.2.1:9000/status?full=1' })
  assert.equal(r.url, 'http://127.0.2.1:9000/status?full=1')
  assert.equal(r.address, '127.0.2.1')
  assert.equal(r.port, 9000)
  const v6 = resolveSpec({ kind: 'http', address: '::1', port: 80, path: '/' })
  assert.equal(v6.url, 'http://[::1]/')
  assert.equal(v6.address, '::1')
  assert.match(checkKey({ kind: 'tcp', address: '::1', port: 53 }), /^tcp:\/\/\[::1\]:53#[0-9a-f]{8}$/)
})

test('resolveSpec is idempotent', () => {
  for (const s of [base, { ...base, kind: 'https' as const, verify: false, body: 'ok' }, { kind: 'tcp' as const, address: '127.0.0.1', port: 1 }]) {
    const r = resolveSpec(s)
    assert.deepEqual(resolveSpec(r as CheckSpec), r)
  }
})

test('identical specs share a key whatever their key order or spelled-out defaults', () => {
  const a: CheckSpec = { kind: 'http', address: '127.0.1.1', port: 8080, host: 'www.example.test' }
  const b: CheckSpec = { host: 'www.example.test', rise: 2, fall: 3, port: 8080, expect: [200], path: '/healthz', method: 'GET', address: '127.0.1.1', kind: 'http', intervalMs: 5000, timeoutMs: 2000 }
  const c: CheckSpec = { ...a, url: 'http://127.0.1.1:8080/healthz' }
  assert.equal(checkKey(a), checkKey(b))
  assert.equal(checkKey(a), checkKey(c))
  assert.equal(checkKey(a), checkKey(resolveSpec(a)))
  assert.match(checkKey(a), /^http:\/\/127\.0\.1\.1:8080\/healthz#[0-9a-f]{8}$/)
  assert.equal(checkKey({ ...a, expect: [204, 200] }), checkKey({ ...a, expect: [200, 204, 200] }), 'expect is a set')
})

const differs: { name: string; spec: CheckSpec }[] = [
  { name: 'path', spec: { ...base, path: '/other' } },
  { name: 'host header', spec: { ...base, host: 'a.example' } },
  { name: 'method', spec: { ...base, method: 'HEAD' } },
  { name: 'expected codes', spec: { ...base, expect: [200, 204] } },
  { name: 'body substring', spec: { ...base, body: 'ok' } },
  { name: 'interval', spec: { ...base, intervalMs: 10_000 } },
  { name: 'timeout', spec: { ...base, timeoutMs: 1000 } },
  { name: 'rise', spec: { ...base, rise: 1 } },
  { name: 'fall', spec: { ...base, fall: 1 } },
  { name: 'kind', spec: { ...base, kind: 'tcp' } },
  { name: 'address', spec: { ...base, address: '127.0.1.2' } },
]

for (const c of differs) {
  test(`a different ${c.name} gives a different key`, () => assert.notEqual(checkKey(c.spec), checkKey(base)))
}

test('verify and servername split https keys', () => {
  const s: CheckSpec = { kind: 'https', address: '127.0.1.1', port: 443 }
  assert.notEqual(checkKey(s), checkKey({ ...s, verify: false }))
  assert.notEqual(checkKey(s), checkKey({ ...s, servername: 'x.example' }))
})

const invalid: { name: string; spec: CheckSpec; error: RegExp }[] = [
  { name: 'unknown kind', spec: { ...base, kind: 'udp' as 'tcp' }, error: /kind must be http, https or tcp, got udp/ },
  { name: 'timeout not below interval', spec: { ...base, intervalMs: 1000, timeoutMs: 1000 }, error: /timeoutMs \(1000\) must be less than intervalMs \(1000\)/ },
  { name: 'zero rise', spec: { ...base, rise: 0 }, error: /rise must be a positive integer, got 0/ },
  { name: 'fractional fall', spec: { ...base, fall: 1.5 }, error: /fall must be a positive integer, got 1.5/ },
  { name: 'port out of range', spec: { ...base, port: 70000 }, error: /port must be 1..65535, got 70000/ },
  { name: 'relative path', spec: { ...base, path: 'healthz' }, error: /path must start with \/, got healthz/ },
  { name: 'bad method', spec: { ...base, method: 'POST' as 'GET' }, error: /method must be GET or HEAD, got POST/ },
  { name: 'empty expect', spec: { ...base, expect: [] }, error: /expect must list status codes 100..599/ },
  { name: 'status out of range', spec: { ...base, expect: [99] }, error: /expect must list status codes 100..599, got \[99\]/ },
  { name: 'body with HEAD', spec: { ...base, method: 'HEAD', body: 'ok' }, error: /a body substring cannot be checked with HEAD/ },
  { name: 'url of another scheme', spec: { ...base, url: 'https://127.0.1.1/' }, error: /does not match kind http/ },
  { name: 'url that is not one', spec: { ...base, url: 'not a url' }, error: /url is not a URL: not a url/ },
  { name: 'missing tcp address', spec: { kind: 'tcp', address: '', port: 1 }, error: /address is required/ },
]

for (const c of invalid) {
  test(`an invalid spec is rejected: ${c.name}`, () => {
    assert.throws(() => resolveSpec(c.spec), (err: Error) => err instanceof RangeError && c.error.test(err.message) && err.message.startsWith('invalid health check: '))
  })
}
