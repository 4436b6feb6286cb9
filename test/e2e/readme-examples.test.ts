/**
 * The dig examples of README.md that show their output, run as the README writes them (through a
 * shell, pipes included) against the demo zone on a free port: what they print is what the README
 * says they print.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { ROOT, startServer, type RunningServer } from '../helpers/server.js'

const sh = promisify(execFile)

/** The README line that starts with `prefix` (its command, without the `# ...` comment), on `port`. */
async function readmeCommand(prefix: string, port: number): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const line = readme.split('\n').find((l) => l.startsWith(prefix))
  assert.ok(line, `README.md has a line starting with ${prefix}`)
  return line.replace(/\s+# .*$/, '').replace('-p 5300', `-p ${port}`)
}

describe('README.md dig examples', () => {
  let server: RunningServer
  before(async () => {
    server = await startServer()
  })
  after(async () => {
    await server?.stop()
  })

  test('the CLIENT-SUBNET grep prints the scope line and the answer line', async () => {
    const cmd = await readmeCommand("dig @127.0.0.1 -p 5300 www.gslb.example.test +subnet=81.2.69.0/24 | grep", server.port)
    const { stdout } = await sh('sh', ['-c', cmd])
    const lines = stdout.trim().split('\n')
    assert.equal(lines.length, 2, stdout)
    assert.equal(lines[0], '; CLIENT-SUBNET: 81.2.69.0/24/18')
    assert.deepEqual(lines[1]!.split(/\s+/), ['www.gslb.example.test.', '30', 'IN', 'A', '127.0.2.1'])
  })

  test('the SOA example shows the flags the README gives', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
    const line = readme.split('\n').find((l) => l.startsWith('dig @127.0.0.1 -p 5300') && / gslb\.example\.test SOA /.test(l))
    const said = line && /\(flags: ([a-z ]+)\)/.exec(line)?.[1]
    assert.ok(said, 'README.md has the SOA example and says which flags its answer has')
    const { stdout } = await sh('sh', ['-c', line.replace(/\s+# .*$/, '').replace('-p 5300', `-p ${server.port}`)])
    assert.equal(/;; flags: ([a-z ]+);/.exec(stdout)?.[1], said, stdout)
  })
})
