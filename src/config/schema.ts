/**
 * The zone schema: one JSON Schema (draft-07) that is the single source of truth for zone files,
 * for their defaults, for the admin API's bodies (a later issue) and for docs/zones.md.
 * `x-message` on a node replaces Ajv's generic message with one an operator can act on.
 */
const u32 = { type: 'integer', minimum: 0, maximum: 4294967295 }
const ttl = { type: 'integer', minimum: 0, maximum: 2147483647, 'x-message': 'must be an integer number of seconds, 0..2147483647' }
const hostname = { type: 'string', minLength: 1, maxLength: 254, 'x-message': 'must be a domain name' }

const oneOrMany = (item: object, what: string) => ({
  anyOf: [item, { type: 'array', minItems: 1, items: item }],
  'x-message': `must be ${what} or a non-empty list of them`,
})

const ipv4 = { type: 'string', format: 'ipv4', 'x-message': 'must be an IPv4 address such as 192.0.2.1' }
const ipv6 = { type: 'string', format: 'ipv6', 'x-message': 'must be an IPv6 address such as 2001:db8::1' }
const txtString = { type: 'string', maxLength: 65000 }
const mx = {
  type: 'object',
  additionalProperties: false,
  required: ['preference', 'exchange'],
  properties: { preference: { type: 'integer', minimum: 0, maximum: 65535 }, exchange: hostname },
}
const srv = {
  type: 'object',
  additionalProperties: false,
  required: ['priority', 'weight', 'port', 'target'],
  properties: {
    priority: { type: 'integer', minimum: 0, maximum: 65535 },
    weight: { type: 'integer', minimum: 0, maximum: 65535 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    target: hostname,
  },
}
const caa = {
  type: 'object',
  additionalProperties: false,
  required: ['tag', 'value'],
  properties: {
    flags: { type: 'integer', minimum: 0, maximum: 255 },
    tag: { type: 'string', pattern: '^[A-Za-z0-9]{1,15}$', 'x-message': 'must be 1 to 15 letters or digits, such as issue, issuewild or iodef' },
    value: { type: 'string', maxLength: 65000 },
  },
}

export const recordSetSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  'x-message': 'must hold at least one record type (A, AAAA, CNAME, TXT, MX, SRV, CAA) and an optional ttl',
  properties: {
    ttl,
    A: oneOrMany(ipv4, 'an IPv4 address'),
    AAAA: oneOrMany(ipv6, 'an IPv6 address'),
    CNAME: hostname,
    TXT: {
      anyOf: [txtString, { type: 'array', minItems: 1, items: { anyOf: [txtString, { type: 'array', minItems: 1, items: { type: 'string', maxLength: 255 } }] } }],
      'x-message': 'must be a string, or a list whose items are strings or lists of strings of at most 255 bytes',
    },
    MX: oneOrMany(mx, 'an object { preference, exchange }'),
    SRV: oneOrMany(srv, 'an object { priority, weight, port, target }'),
    CAA: oneOrMany(caa, 'an object { flags, tag, value }'),
  },
}

export const zoneSchema = {
  $id: 'https://meridian.invalid/schemas/zone.json',
  title: 'Meridian zone',
  type: 'object',
  additionalProperties: false,
  required: ['origin', 'soa', 'ns'],
  properties: {
    origin: { ...hostname, description: 'The zone apex, e.g. gslb.example.com (the subdomain delegated to Meridian).' },
    ttl: { ...ttl, default: 300, description: 'Default TTL of static records.' },
    soa: {
      type: 'object',
      additionalProperties: false,
      required: ['mname', 'rname'],
      properties: {
        mname: { ...hostname, description: 'Primary name server.' },
        rname: { ...hostname, description: 'Mailbox of the person responsible, with the @ written as a dot.' },
        serial: {
          anyOf: [u32, { const: 'auto' }],
          default: 'auto',
          'x-message': 'must be an integer 0..4294967295 or "auto"',
        },
        refresh: { ...u32, default: 3600 },
        retry: { ...u32, default: 600 },
        expire: { ...u32, default: 1209600 },
        minimum: { ...u32, default: 60, description: 'Negative-caching TTL cap (RFC 2308).' },
        ttl: { ...ttl, description: 'TTL of the SOA record itself; defaults to the zone ttl.' },
      },
    },
    ns: { type: 'array', minItems: 1, items: hostname, 'x-message': 'must be a non-empty list of name server names' },
    records: {
      type: 'object',
      default: {},
      additionalProperties: recordSetSchema,
    },
  },
} as const
