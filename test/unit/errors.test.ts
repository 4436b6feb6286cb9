import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { ERROR_CODES } from '../../src/errors.js'
import { ROOT } from '../helpers/server.js'

test('every error code is documented in docs/errors.md, and every documented code exists', async () => {
  const md = await readFile(path.join(ROOT, 'docs', 'errors.md'), 'utf8')
  const documented = [...md.matchAll(/^\| `(E_[A-Z_]+)` \|/gm)].map((m) => m[1])
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort())
})
