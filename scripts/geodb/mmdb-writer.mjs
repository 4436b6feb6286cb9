/**
 * A small MaxMind DB (MMDB 2.0) writer: enough to build Meridian's test database, deterministically.
 * Format: https://maxmind.github.io/MaxMind-DB/
 *
 *   file     = search tree | 16 zero bytes | data section | "\xAB\xCD\xEFMaxMind.com" | metadata map
 *   tree     = node_count nodes of two records (left = bit 0, right = bit 1), 24, 28 or 32 bits each;
 *              a record < node_count is a node number, == node_count means "no data",
 *              > node_count points at (record - node_count - 16) in the data section.
 *
 * Always an IPv6 tree (ip_version 6). IPv4 networks live under ::/96, as MaxMind's databases have them,
 * and ::ffff:0:0/96 (IPv4-mapped) is an alias of that subtree, so `::ffff:192.0.2.1` finds what
 * `192.0.2.1` finds. Overlapping networks are refused rather than resolved by insertion order.
 *
 * Values: strings, booleans, arrays and plain objects map to utf8_string, boolean, array and map; a JS
 * number is a double unless wrapped: uint16(n), uint32(n), uint64(n). Map keys are written in insertion
 * order; identical records are stored once.
 *
 * Output depends only on the input: networks are sorted before insertion, nodes are numbered
 * breadth-first, build_epoch is whatever the caller passes.
 */
import { isIPv4, isIPv6 } from 'node:net'

class Typed {
  constructor(type, value) {
    this.type = type
    this.value = value
  }
}
export const uint16 = (n) => new Typed('uint16', n)
export const uint32 = (n) => new Typed('uint32', n)
export const uint64 = (n) => new Typed('uint64', n)

const T = { pointer: 1, utf8: 2, double: 3, bytes: 4, uint16: 5, uint32: 6, map: 7, int32: 8, uint64: 9, uint128: 10, array: 11, boolean: 14, float: 15 }

export const METADATA_MARKER = Buffer.concat([Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com', 'ascii')])
const DATA_SECTION_SEPARATOR = Buffer.alloc(16)

// ---------------------------------------------------------------------------------------------- addresses

/** `192.0.2.0/26` or `2001:db8::/48` -> 16 address bytes in the IPv6 tree and the prefix length there. */
export function parseNetwork(text) {
  const slash = text.indexOf('/')
  if (slash < 0) throw new Error(`${text}: not a network (expected address/prefix)`)
  const addr = text.slice(0, slash)
  const lenText = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(lenText)) throw new Error(`${text}: bad prefix length`)
  const len = Number(lenText)
  let bytes
  let prefix
  let family
  if (isIPv4(addr)) {
    if (len < 1 || len > 32) throw new Error(`${text}: IPv4 prefix length must be 1..32`)
    bytes = new Uint8Array(16)
    bytes.set(addr.split('.').map(Number), 12)
    prefix = 96 + len
    family = 4
  } else if (isIPv6(addr)) {
    if (len < 1 || len > 128) throw new Error(`${text}: IPv6 prefix length must be 1..128`)
    bytes = ipv6Bytes(addr)
    prefix = len
    family = 6
    if (bytes.slice(0, 12).every((b) => b === 0) && len >= 96) throw new Error(`${text}: write networks under ::/96 as IPv4`)
    if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff && len >= 80) {
      throw new Error(`${text}: ::ffff:0:0/96 is an alias of the IPv4 space; write the network as IPv4`)
    }
  } else {
    throw new Error(`${text}: not an IP address`)
  }
  for (let i = prefix; i < 128; i++) {
    if (bitAt(bytes, i)) throw new Error(`${text}: host bits set (the network address is ${formatNetwork(bytes, prefix, family)})`)
  }
  return { bytes, prefix, family, len }
}

export function ipv6Bytes(addr) {
  if (!isIPv6(addr)) throw new Error(`${addr}: not an IPv6 address`)
  let text = addr.split('%')[0]
  let v4 = null
  if (text.includes('.')) {
    // a trailing dotted quad stands for the last two groups
    const i = text.lastIndexOf(':')
    v4 = text.slice(i + 1).split('.').map(Number)
    text = text.slice(0, i + 1) + '0:0'
  }
  const parts = text.split('::')
  const head = parts[0] ? parts[0].split(':') : []
  const rest = parts.length > 1 && parts[1] ? parts[1].split(':') : []
  const groups = parts.length > 1 ? [...head, ...Array(8 - head.length - rest.length).fill('0'), ...rest] : head
  if (groups.length !== 8) throw new Error(`${addr}: cannot expand`)
  const bytes = new Uint8Array(16)
  groups.forEach((g, i) => {
    const v = parseInt(g, 16)
    bytes[2 * i] = v >> 8
    bytes[2 * i + 1] = v & 0xff
  })
  if (v4) bytes.set(v4, 12)
  return bytes
}

const bitAt = (bytes, i) => (bytes[i >> 3] >> (7 - (i & 7))) & 1

/** 4 bytes as a dotted quad, 16 as eight hex groups (uncompressed). */
export function formatBytes(bytes) {
  if (bytes.length === 4) return [...bytes].join('.')
  const groups = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16))
  return groups.join(':')
}

function formatNetwork(bytes, prefix, family) {
  const masked = Uint8Array.from(bytes, (b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    return b & (0xff << (8 - keep))
  })
  return family === 4 ? `${formatBytes(masked.slice(12))}/${prefix - 96}` : `${formatBytes(masked)}/${prefix}`
}

// ---------------------------------------------------------------------------------------------- data

function ctrl(type, size) {
  const head = []
  let first = type <= 7 ? type << 5 : 0
  const ext = type > 7 ? [type - 7] : []
  const sizeBytes = []
  if (size < 29) {
    first |= size
  } else if (size < 29 + 256) {
    first |= 29
    sizeBytes.push(size - 29)
  } else if (size < 285 + 65536) {
    first |= 30
    const v = size - 285
    sizeBytes.push(v >> 8, v & 0xff)
  } else if (size < 65821 + 2 ** 24) {
    first |= 31
    const v = size - 65821
    sizeBytes.push((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
  } else {
    throw new Error(`value too large (${size})`)
  }
  head.push(first, ...ext, ...sizeBytes)
  return Buffer.from(head)
}

function uintBytes(value, maxBytes) {
  let v = BigInt(value)
  if (v < 0n || v >= 1n << BigInt(8 * maxBytes)) throw new Error(`${value} does not fit in ${8 * maxBytes} unsigned bits`)
  const out = []
  while (v > 0n) {
    out.unshift(Number(v & 0xffn))
    v >>= 8n
  }
  return Buffer.from(out)
}

export function encodeValue(value) {
  if (value instanceof Typed) {
    const max = { uint16: 2, uint32: 4, uint64: 8 }[value.type]
    if (!Number.isInteger(Number(value.value))) throw new Error(`${value.type}: ${value.value} is not an integer`)
    const b = uintBytes(value.value, max)
    return Buffer.concat([ctrl(T[value.type], b.length), b])
  }
  if (typeof value === 'string') {
    const b = Buffer.from(value, 'utf8')
    return Buffer.concat([ctrl(T.utf8, b.length), b])
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot store ${value}`)
    const b = Buffer.alloc(8)
    b.writeDoubleBE(value)
    return Buffer.concat([ctrl(T.double, 8), b])
  }
  if (typeof value === 'boolean') return ctrl(T.boolean, value ? 1 : 0)
  if (Array.isArray(value)) return Buffer.concat([ctrl(T.array, value.length), ...value.map(encodeValue)])
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    return Buffer.concat([ctrl(T.map, entries.length), ...entries.flatMap(([k, v]) => [encodeValue(k), encodeValue(v)])])
  }
  throw new Error(`cannot store ${typeof value} ${String(value)}`)
}

// ---------------------------------------------------------------------------------------------- tree

class Node {
  constructor() {
    this.children = [null, null] // null | Node | { data: offset } | { alias: Node }
    this.id = -1
  }
}

function insert(root, bytes, prefix, leaf, label) {
  let node = root
  for (let i = 0; i < prefix - 1; i++) {
    const b = bitAt(bytes, i)
    let next = node.children[b]
    if (next === null) {
      next = new Node()
      node.children[b] = next
    } else if (!(next instanceof Node)) {
      throw new Error(`${label} lies inside a network already in the database`)
    }
    node = next
  }
  const b = bitAt(bytes, prefix - 1)
  if (node.children[b] !== null) throw new Error(`${label} overlaps a network already in the database`)
  node.children[b] = leaf
}

function compareNetworks(a, b) {
  for (let i = 0; i < 16; i++) if (a.bytes[i] !== b.bytes[i]) return a.bytes[i] - b.bytes[i]
  return a.prefix - b.prefix
}

/**
 * @param {{ networks: { network: string, data: unknown }[], databaseType: string, description?: Record<string,string>,
 *           languages?: string[], buildEpoch: number, recordSize?: 24|28|32 }} opts
 * @returns {Buffer}
 */
export function writeMmdb({ networks, databaseType, description = {}, languages = [], buildEpoch, recordSize }) {
  if (!Number.isInteger(buildEpoch) || buildEpoch < 0) throw new Error('buildEpoch must be a fixed non-negative integer (seconds)')
  const parsed = networks.map(({ network, data }) => ({ ...parseNetwork(network), network, data })).sort(compareNetworks)

  // Data section: each distinct record once, in network order.
  const chunks = []
  const offsets = new Map()
  let dataSize = 0
  const root = new Node()
  for (const n of parsed) {
    const encoded = encodeValue(n.data)
    const key = encoded.toString('latin1')
    let offset = offsets.get(key)
    if (offset === undefined) {
      offset = dataSize
      offsets.set(key, offset)
      chunks.push(encoded)
      dataSize += encoded.length
    }
    insert(root, n.bytes, n.prefix, { data: offset }, n.network)
  }

  // ::ffff:0:0/96 -> the IPv4 subtree (the node reached by 96 zero bits), when there is one.
  let v4root = root
  for (let i = 0; i < 96 && v4root instanceof Node; i++) v4root = v4root.children[0]
  if (v4root instanceof Node && v4root !== root) {
    const mapped = new Uint8Array(16)
    mapped[10] = 0xff
    mapped[11] = 0xff
    insert(root, mapped, 96, { alias: v4root }, '::ffff:0:0/96')
  }

  // Number nodes breadth-first: root is 0.
  const order = []
  root.id = 0
  order.push(root)
  for (let i = 0; i < order.length; i++) {
    for (const c of order[i].children) {
      if (c instanceof Node && c.id < 0) {
        c.id = order.length
        order.push(c)
      }
    }
  }
  const nodeCount = order.length
  const recordValue = (c) => (c === null ? nodeCount : c instanceof Node ? c.id : 'alias' in c ? c.alias.id : nodeCount + 16 + c.data)
  const maxValue = nodeCount + 16 + dataSize
  const size = recordSize ?? (maxValue < 2 ** 24 ? 24 : maxValue < 2 ** 28 ? 28 : 32)
  if (![24, 28, 32].includes(size)) throw new Error(`record size must be 24, 28 or 32, not ${size}`)
  if (maxValue >= 2 ** size) throw new Error(`${maxValue} does not fit in ${size}-bit records`)

  const nodeBytes = size / 4
  const tree = Buffer.alloc(nodeCount * nodeBytes)
  for (const node of order) {
    const o = node.id * nodeBytes
    const l = recordValue(node.children[0])
    const r = recordValue(node.children[1])
    if (size === 24) {
      tree.writeUIntBE(l, o, 3)
      tree.writeUIntBE(r, o + 3, 3)
    } else if (size === 28) {
      tree.writeUIntBE(l & 0xffffff, o, 3)
      tree[o + 3] = (((l >>> 24) & 0x0f) << 4) | ((r >>> 24) & 0x0f)
      tree.writeUIntBE(r & 0xffffff, o + 4, 3)
    } else {
      tree.writeUInt32BE(l, o)
      tree.writeUInt32BE(r, o + 4)
    }
  }

  const metadata = encodeValue({
    binary_format_major_version: uint16(2),
    binary_format_minor_version: uint16(0),
    build_epoch: uint64(buildEpoch),
    database_type: databaseType,
    description,
    ip_version: uint16(6),
    languages,
    node_count: uint32(nodeCount),
    record_size: uint16(size),
  })
  const data = Buffer.concat(chunks)
  if (data.includes(METADATA_MARKER)) throw new Error('the data section contains the metadata marker')
  return Buffer.concat([tree, DATA_SECTION_SEPARATOR, data, METADATA_MARKER, metadata])
}
