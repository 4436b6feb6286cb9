/**
 * The watcher's debounce has a maximum: changes that keep coming faster than the debounce (150 ms)
 * do not put the reload off for ever.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { startServer, tempDir, type LogLine } from '../helpers/server.js'
import { dig } from '../helpers/dig.js'
import { smallZone } from '../helpers/zones.js'

/**
 * A process that appends a TXT record's line to `file` every 50 ms, opening and closing it each
 * time (as a tool writing in pieces, or an edit loop, does), for at most `maxMs`.
 */
const WRITER = `
const { appendFileSync } = require('node:fs')
const [file, maxMs] = [process.argv[1], Number(process.argv[2])]
let n = 0
const t = setInterval(() => appendFileSync(file, '  n' + ++n + ': { TXT: "' + n + '" }\\n'), 50)
setTimeout(() => { clearInterval(t); process.exit(0) }, maxMs)
`

test('a file changed every 50 ms is reloaded while the changes go on (the debounce has a maximum of 2 s), not only once they stop', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  const file = path.join(dir, 'a.test.yaml')
  await writeFile(file, smallZone('a.test'))
  const server = await startServer({ zonesDirInPlace: dir })
  t.after(() => server.stop())
  const loaded = (n: number) => (l: LogLine) => l.msg === 'zones loaded' && server.logs.filter((x) => x.msg === 'zones loaded').length >= n
  await server.waitForLog(loaded(1))

  // 20 s of writes; with the old unbounded debounce no reload came before the writer stopped.
  const writer = spawn(process.execPath, ['-e', WRITER, file, '20000'], { stdio: 'ignore' })
  const exited = once(writer, 'exit')
  t.after(async () => {
    if (writer.exitCode === null && writer.signalCode === null) {
      writer.kill()
      await exited
    }
  })
  const reloaded = await server.waitForLog(loaded(2), 15_000)
  assert.equal(writer.exitCode, null, 'the reload came while the writer was still writing')
  assert.match(String(reloaded.reason), /^file changed/)
  // What it served is what the file held then: some of the lines written so far.
  const answer = await dig('127.0.0.1', server.port, 'n1.a.test', 'TXT')
  assert.equal(answer.status, 'NOERROR')
  writer.kill()
  await exited
})
