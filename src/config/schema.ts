/**
 * The zone schema: one JSON Schema (draft-07) that is the single source of truth for zone files,
 * for their defaults, for the admin API's bodies and for docs/zones.md.
 * `x-message` on a node replaces Ajv's generic message with one an operator can act on.
 */
import { FALLBACKS, POLICIES } from '../model/gslb.js'

const u32 = { type: 'integer', minimum: 0, maximum: 4294967295 }
const ttl = { type: 'integer', minimum: 0, maximum: 2147483647, 'x-message': 'must be an integer number of seconds, 0..2147483647' }
const hostname = { type: 'string', minLength: 1, maxLength: 254, 'x-message': 'must be a domain name' }

const oneOrMany = (item: object, what: string) => ({
  anyOf: [item, { type: 'array', minItems: 1, items: item }],
  'x-message': `must be ${what} or a non-empty list of them`,
})

const bool = (def: boolean) => ({ type: 'boolean', default: def, 'x-message': 'must be true or false' })

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

const location = {
  anyOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['lat', 'lon'],
      properties: { lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } },
    },
    { type: 'object', additionalProperties: false, required: ['country'], properties: { country: { type: 'string', pattern: '^[A-Za-z]{2}$', 'x-message': 'must be a two-letter ISO 3166 country code such as IE or US' } } },
    { type: 'object', additionalProperties: false, required: ['city'], properties: { city: { type: 'string', pattern: '^[A-Za-z]{3}$', 'x-message': 'must be a three-letter IATA metro code such as DUB or IAD (geodb/places.json)' } } },
  ],
  'x-message': 'must be { lat, lon } (degrees), { country: XX } (ISO 3166 code) or { city: XXX } (IATA metro code)',
}

const seconds = (def: number, min: number, max: number) => ({ type: 'number', exclusiveMinimum: min, maximum: max, default: def, 'x-message': `must be a number of seconds above ${min} and at most ${max}` })

export const checkSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { enum: ['http', 'https', 'tcp'], default: 'http', 'x-message': 'must be http, https or tcp' },
    url: { type: 'string', pattern: '^https?://', 'x-message': 'must be an http:// or https:// URL such as http://{vip}:8080/healthz (a tcp check takes port, not url)', description: 'URL template; {vip} is replaced by each VIP (in brackets for IPv6). Default: TYPE://{vip}:PORT/PATH.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, 'x-message': 'must be a port number 1..65535', description: 'Port of the check (default 80 for http, 443 for https; required for tcp).' },
    path: { type: 'string', pattern: '^/', default: '/healthz', 'x-message': 'must be a URL path starting with /, such as /healthz' },
    target: { type: 'string', minLength: 1, description: 'Check this address or host instead of each VIP (a status page behind the pool).' },
    host: { type: 'string', minLength: 1, description: 'Host header.' },
    method: { enum: ['GET', 'HEAD'], default: 'GET' },
    expect: {
      type: 'array',
      minItems: 1,
      items: { type: 'integer', minimum: 100, maximum: 599, 'x-message': 'must be an HTTP status code 100..599 (each code listed: no ranges)' },
      default: [200],
      'x-message': 'must be a non-empty list of HTTP status codes, such as [200] or [200, 204]',
    },
    body: { type: 'string', minLength: 1, description: 'A substring the response body must contain.' },
    tlsServername: { type: 'string', minLength: 1 },
    tlsVerify: bool(true),
    interval: seconds(5, 0.01, 3600),
    timeout: seconds(2, 0.005, 3600),
    rise: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
    fall: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
  },
}

/**
 * A region's name: the zone schema's `regions` keys, the admin API's `name` of a new region. A DNS
 * label as a host name's (LDH, RFC 1123 §2.1, as service names are), in lowercase: 1 to 63 letters,
 * digits and '-', not starting or ending with '-'.
 */
export const REGION_NAME_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'

export const regionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['location', 'vips'],
  properties: {
    location,
    vips: { type: 'array', minItems: 1, items: { anyOf: [ipv4, ipv6], 'x-message': 'must be an IPv4 or IPv6 address' }, 'x-message': 'must be a non-empty list of VIP addresses' },
    weight: { type: 'integer', minimum: 0, maximum: 1000, default: 100, 'x-message': 'must be an integer 0..1000 (0 = standby)' },
    drained: bool(false),
    minHealthy: { type: 'integer', minimum: 1, maximum: 1000, default: 1 },
    check: checkSchema,
  },
}

export const serviceSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    regions: {
      anyOf: [{ const: 'all' }, { type: 'array', minItems: 1, items: { type: 'string' } }],
      default: 'all',
      'x-message': 'must be "all" or a non-empty list of region names',
    },
    policy: { enum: POLICIES, default: 'geo-latency', 'x-message': 'must be geo-latency, geo, weighted or failover' },
    answers: { type: 'integer', minimum: 1, maximum: 16, default: 2 },
    ttl: { type: 'integer', minimum: 1, maximum: 300, default: 30, 'x-message': 'must be an integer number of seconds, 1..300' },
    fallback: { enum: FALLBACKS, default: 'as-if-healthy', 'x-message': 'must be as-if-healthy, all, static or none' },
    fallbackAddresses: { type: 'array', items: { anyOf: [ipv4, ipv6], 'x-message': 'must be an IPv4 or IPv6 address' }, default: [] },
    fallbackIncludesDrained: bool(false),
    toleranceMs: { type: 'number', minimum: 0, maximum: 10000, default: 20 },
    fill: bool(false),
    unknown: { enum: ['up', 'down'], default: 'up', 'x-message': 'must be up or down: how a VIP whose check has no result yet counts' },
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
      'x-message': 'must be a mapping of owner names to record sets (www: { A: 192.0.2.1 }); leave the key out when there are none',
    },
    defaultLocation: { ...location, description: 'Where clients with a private or unknown address are taken to be; without it they get no geographic preference.' },
    regions: { type: 'object', default: {}, propertyNames: { pattern: REGION_NAME_PATTERN }, additionalProperties: regionSchema, 'x-message': 'must be a mapping of region names to regions (eu-west: { location, vips }); leave the key out when there are none' },
    services: { type: 'object', default: {}, additionalProperties: serviceSchema, 'x-message': 'must be a mapping of service names to services (www: { policy: geo }); leave the key out when there are none' },
  },
} as const
