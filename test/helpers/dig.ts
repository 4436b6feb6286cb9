/**
 * Runs the real `dig` and parses what it prints (header, flags, sections, EDNS and ECS).
 */
import { execFile } from 'node:child_process'

export interface DigRecord {
  name: string
  ttl: number
  class: string
  type: string
  data: string
}

export interface DigResult {
  status: string
  opcode: string
  flags: string[]
  counts: { query: number; answer: number; authority: number; additional: number }
  question: string[]
  answer: DigRecord[]
  authority: DigRecord[]
  additional: DigRecord[]
  /** `EDNS: version: 0, flags:; udp: 1232` parsed, or null when the reply had no OPT. */
  edns: { version: number; udp: number; flags: string[] } | null
  /** The names of the reply's EDNS options as dig prints them (`CLIENT-SUBNET`, `NSID`, `COOKIE`, `OPT=100`...), in order. */
  ednsOptions: string[]
  /** `CLIENT-SUBNET: 198.51.100.0/24/0`, or null. */
  clientSubnet: string | null
  /** `;; SERVER: ... (UDP)` transport, and the message size. */
  transport: string
  size: number
  raw: string
}

function parseRecord(line: string): DigRecord {
  const [name = '', ttl = '0', klass = '', type = '', ...rest] = line.split(/\s+/)
  return { name, ttl: Number(ttl), class: klass, type, data: rest.join(' ') }
}

/** The lines under `; EDNS: ...` in the OPT pseudosection, one per option: each one's name (the text before its colon). */
function ednsOptions(raw: string): string[] {
  const block = /^;; OPT PSEUDOSECTION:\n; EDNS:[^\n]*\n((?:; [^\n]*\n)*)/m.exec(raw)
  return block ? block[1]!.split('\n').filter(Boolean).map((l) => l.slice(2).split(':')[0]!.trim()) : []
}

export function parseDig(raw: string): DigResult {
  const header = /opcode: (\w+), status: (\w+), id: \d+/.exec(raw)
  const flagLine = /;; flags:([^;]*); QUERY: (\d+), ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)/.exec(raw)
  const ednsLine = /; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)/.exec(raw)
  const sections: Record<string, string[]> = {}
  let current: string | null = null
  for (const line of raw.split('\n')) {
    const m = /^;; (\w+) SECTION:/.exec(line)
    if (m) {
      current = m[1]!
      sections[current] = []
      continue
    }
    if (line.trim() === '') {
      current = null
      continue
    }
    if (current && current !== 'QUESTION' && !line.startsWith(';')) sections[current]!.push(line)
    if (current === 'QUESTION' && line.startsWith(';')) sections[current]!.push(line.slice(1))
  }
  const server = /;; SERVER: .*\((\w+)\)/.exec(raw)
  const size = /;; MSG SIZE\s+rcvd: (\d+)/.exec(raw)
  return {
    status: header?.[2] ?? 'NONE',
    opcode: header?.[1] ?? 'NONE',
    flags: flagLine ? flagLine[1]!.trim().split(/\s+/).filter(Boolean) : [],
    counts: flagLine
      ? { query: Number(flagLine[2]), answer: Number(flagLine[3]), authority: Number(flagLine[4]), additional: Number(flagLine[5]) }
      : { query: 0, answer: 0, authority: 0, additional: 0 },
    question: sections.QUESTION ?? [],
    answer: (sections.ANSWER ?? []).map(parseRecord),
    authority: (sections.AUTHORITY ?? []).map(parseRecord),
    additional: (sections.ADDITIONAL ?? []).map(parseRecord),
    edns: ednsLine ? { version: Number(ednsLine[1]), flags: ednsLine[2]!.trim().split(/\s+/).filter(Boolean), udp: Number(ednsLine[3]) } : null,
    ednsOptions: ednsOptions(raw),
    clientSubnet: /CLIENT-SUBNET: (\S+)/.exec(raw)?.[1] ?? null,
    transport: server?.[1] ?? '',
    size: size ? Number(size[1]) : 0,
    raw,
  }
}

/** `dig @server -p port ARGS...` with retries off and a short timeout; resolves with the parsed reply. */
export function dig(server: string, port: number, ...args: string[]): Promise<DigResult> {
  return new Promise((resolve, reject) => {
    execFile('dig', [`@${server}`, '-p', String(port), '+tries=1', '+time=3', ...args], { timeout: 15000 }, (err, stdout, stderr) => {
      if (err && !stdout) return reject(new Error(`dig failed: ${err.message} ${stderr}`))
      resolve(parseDig(stdout))
    })
  })
}

/**
 * One `dig @server -p port -f -` (batch mode, retries off, a short timeout) for many queries, each a
 * line of dig arguments (`www.example.test A +subnet=::ffff:192.0.2.0/120`): one process instead of
 * one per query. Resolves with the parsed replies in the order of `queries`.
 */
export function digBatch(server: string, port: number, queries: string[][], ...args: string[]): Promise<DigResult[]> {
  return new Promise((resolve, reject) => {
    const child = execFile('dig', [`@${server}`, '-p', String(port), '+tries=1', '+time=3', ...args, '-f', '-'], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !stdout) return reject(new Error(`dig failed: ${err.message} ${stderr}`))
      // Each reply's output opens with dig's banner line.
      const replies = stdout.split(/^(?=; <<>> DiG )/m).filter((part) => part.startsWith('; <<>> DiG '))
      if (replies.length !== queries.length) return reject(new Error(`dig -f: ${replies.length} replies to ${queries.length} queries: ${stderr}`))
      resolve(replies.map(parseDig))
    })
    child.stdin!.end(queries.map((q) => `${q.join(' ')}\n`).join(''))
  })
}
