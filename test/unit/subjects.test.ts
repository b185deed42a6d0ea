import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, InvalidTokenError } from '../../src/errors.js';
import {
  describeEntity,
  SubjectScheme,
  subjectMatches,
  type EventFilter,
} from '../../src/subjects/subjects.js';
import { encodeToken } from '../../src/subjects/tokens.js';
import { int, pick, prng, randomString, type Rand } from '../support/random.js';

const SEED = 0x5eed_7002;
const TOKEN = /^[A-Za-z0-9_=-]+$/;

describe(`SubjectScheme round trips (seed ${SEED.toString(16)})`, () => {
  const rand = prng(SEED);
  const cases = Array.from({ length: 2000 }, () => ({
    tenant: randomString(rand, 30),
    entity: { type: randomString(rand, 20), id: randomString(rand, 60) },
    eventType: randomString(rand, 30),
  }));

  test('event() has five valid tokens and parse() gives back tenant, entity and event type', () => {
    for (const c of cases) {
      const scheme = new SubjectScheme('es', c.tenant);
      const subject = scheme.event(c.entity, c.eventType);
      const tokens = subject.split('.');
      expect(tokens).toHaveLength(5);
      expect(tokens[0]).toBe('es');
      for (const t of tokens) expect(t).toMatch(TOKEN);
      expect(scheme.parse(subject)).toEqual({ tenant: c.tenant, entity: c.entity, eventType: c.eventType });
    }
  });

  test('entity() is the event subject with the event type replaced by *, and covers it', () => {
    for (const c of cases) {
      const scheme = new SubjectScheme('es', c.tenant);
      const event = scheme.event(c.entity, c.eventType);
      const entity = scheme.entity(c.entity);
      expect(entity.endsWith('.*')).toBe(true);
      expect(event.startsWith(entity.slice(0, -1))).toBe(true);
      expect(entity.split('.')).toHaveLength(5);
      expect(subjectMatches(entity, event)).toBe(true);
    }
  });

  test("entity() never covers another entity's events, even look-alike ones", () => {
    const scheme = new SubjectScheme('es', 't');
    const lookAlikes = [
      { type: 'order', id: 'a' },
      { type: 'order', id: 'a.b' },
      { type: 'order', id: 'a=2Eb' },
      { type: 'order.a', id: 'b' },
      { type: 'order', id: '*' },
      { type: 'order', id: '>' },
      { type: 'order', id: 'a b' },
      { type: 'Order', id: 'a' },
    ];
    for (const a of lookAlikes) {
      for (const b of lookAlikes) {
        expect(subjectMatches(scheme.entity(a), scheme.event(b, 'x'))).toBe(a === b);
      }
    }
    for (let i = 0; i + 1 < cases.length; i += 2) {
      const a = cases[i]!.entity;
      const b = cases[i + 1]!.entity;
      if (a.type === b.type && a.id === b.id) continue;
      expect(subjectMatches(scheme.entity(a), scheme.event(b, 'x'))).toBe(false);
    }
  });

  test("all() covers every subject of the tenant and none of another tenant's", () => {
    for (let i = 0; i + 1 < cases.length; i += 2) {
      const mine = new SubjectScheme('es', cases[i]!.tenant);
      const other = new SubjectScheme('es', cases[i + 1]!.tenant);
      const c = cases[i + 1]!;
      expect(mine.all()).toBe(`es.${encodeToken('tenant', cases[i]!.tenant)}.>`);
      expect(subjectMatches(mine.all(), mine.event(c.entity, c.eventType))).toBe(true);
      expect(subjectMatches(mine.all(), other.event(c.entity, c.eventType))).toBe(
        cases[i]!.tenant === c.tenant,
      );
      expect(subjectMatches(mine.all(), new SubjectScheme('ez', cases[i]!.tenant).all())).toBe(false);
    }
  });

  test('filter() matches an event exactly when every given field agrees', () => {
    // Small domains so that filters and events coincide often.
    const r = prng(SEED + 1);
    const types = ['order', 'order.x', 'cart'];
    const ids = ['1', '1 ', '=31', '*'];
    const events = ['placed', 'placed.v2', '>'];
    const maybe = <T>(rand: Rand, items: T[]): T | undefined =>
      rand() < 0.4 ? undefined : pick(rand, items);
    const scheme = new SubjectScheme('es', 'acme');
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const entityType = maybe(r, types);
      const filter: EventFilter = {
        entityType,
        entityId: entityType === undefined ? undefined : maybe(r, ids),
        eventType: maybe(r, events),
      };
      const entity = { type: pick(r, types), id: pick(r, ids) };
      const eventType = pick(r, events);
      const expected =
        (filter.entityType === undefined || filter.entityType === entity.type) &&
        (filter.entityId === undefined || filter.entityId === entity.id) &&
        (filter.eventType === undefined || filter.eventType === eventType);
      const subject = scheme.filter(filter);
      expect(subject.split('.')).toHaveLength(5);
      expect(subjectMatches(subject, scheme.event(entity, eventType))).toBe(expected);
      if (expected) matched++;
    }
    expect(matched).toBeGreaterThan(100);
  });
});

describe('SubjectScheme.filter', () => {
  const scheme = new SubjectScheme('es', 'acme');

  test('missing fields become *', () => {
    expect(scheme.filter()).toBe('es.acme.*.*.*');
    expect(scheme.filter({})).toBe('es.acme.*.*.*');
    expect(scheme.filter({ entityType: 'order' })).toBe('es.acme.order.*.*');
    expect(scheme.filter({ entityType: 'order', entityId: 'a.b' })).toBe('es.acme.order.a=2Eb.*');
    expect(scheme.filter({ eventType: 'placed' })).toBe('es.acme.*.*.placed');
    expect(scheme.filter({ entityType: 'order', eventType: 'placed' })).toBe('es.acme.order.*.placed');
    expect(scheme.filter({ entityType: '*', entityId: '>', eventType: 'x' })).toBe('es.acme.=2A.=3E.x');
  });

  test('a full filter equals the event subject', () => {
    expect(scheme.filter({ entityType: 'order', entityId: '1', eventType: 'placed' })).toBe(
      scheme.event({ type: 'order', id: '1' }, 'placed'),
    );
  });

  test('entityId without entityType throws', () => {
    expect(() => scheme.filter({ entityId: '1' })).toThrow(InvalidArgumentError);
    expect(() => scheme.filter({ entityId: '1', eventType: 'placed' })).toThrow(/entityId needs entityType/);
  });

  test('empty strings are refused, not treated as wildcards', () => {
    expect(() => scheme.filter({ entityType: '' })).toThrow(InvalidTokenError);
    expect(() => scheme.filter({ eventType: '' })).toThrow(/event type/);
  });
});

describe('SubjectScheme validation', () => {
  test.each(['*', '>', 'a.b', '', 'é', 'a b', 'es>'])('prefix %j is rejected', (prefix) => {
    expect(() => new SubjectScheme(prefix, 'acme')).toThrow(InvalidTokenError);
    expect(() => new SubjectScheme(prefix, 'acme')).toThrow(/invalid prefix/);
  });

  test('prefix and tenant are kept as given; the tenant is encoded in subjects', () => {
    const scheme = new SubjectScheme('My_Es-1', 'a.b');
    expect(scheme.prefix).toBe('My_Es-1');
    expect(scheme.tenant).toBe('a.b');
    expect(scheme.all()).toBe('My_Es-1.a=2Eb.>');
  });

  test('an empty or over-long tenant is rejected, naming the tenant', () => {
    expect(() => new SubjectScheme('es', '')).toThrow(/invalid tenant/);
    expect(() => new SubjectScheme('es', 'x'.repeat(257))).toThrow(/invalid tenant/);
  });

  test('bad entities and event types name the offending part', () => {
    const scheme = new SubjectScheme('es', 'acme');
    expect(() => scheme.entity(null as never)).toThrow(/invalid entity /);
    expect(() => scheme.entity('order/1' as never)).toThrow(InvalidArgumentError);
    expect(() => scheme.event({ type: '', id: '1' }, 'x')).toThrow(/invalid entity type/);
    expect(() => scheme.event({ type: 'order', id: '' }, 'x')).toThrow(/invalid entity id/);
    expect(() => scheme.event({ type: 'order', id: 1 as never }, 'x')).toThrow(/invalid entity id/);
    expect(() => scheme.event({ type: 'order', id: '1' }, '')).toThrow(/invalid event type/);
  });
});

describe('SubjectScheme.parse rejects foreign subjects', () => {
  const scheme = new SubjectScheme('es', 'acme');

  test.each([
    ['wrong prefix', 'other.acme.order.1.placed'],
    ['prefix differing in case', 'ES.acme.order.1.placed'],
    ['too few tokens', 'es.acme.order.1'],
    ['too many tokens', 'es.acme.order.1.placed.x'],
    ['the entity wildcard', 'es.acme.order.1.*'],
    ['the tenant wildcard', 'es.acme.>'],
    ['an empty token', 'es.acme..1.placed'],
    ['lowercase escapes', 'es.acme.order.a=2eb.placed'],
    ['a stray =', 'es.acme.order.1=.placed'],
    ['invalid UTF-8', 'es.acme.order.=FF.placed'],
    ['raw unicode', 'es.acme.ordér.1.placed'],
    ['empty subject', ''],
  ])('%s: %j', (_label, subject) => {
    expect(() => scheme.parse(subject)).toThrow(InvalidTokenError);
  });

  test('the error names the part that failed', () => {
    expect(() => scheme.parse('xx.acme.order.1.placed')).toThrow(/invalid subject .*expected es\./);
    expect(() => scheme.parse('es.acme.order.=FF.placed')).toThrow(/invalid entity id/);
    expect(() => scheme.parse('es.acme.order.1.=ZZ')).toThrow(/invalid event type/);
  });
});

describe('describeEntity', () => {
  test('formats type/id', () => {
    expect(describeEntity({ type: 'order', id: '42' })).toBe('order/42');
    expect(describeEntity({ type: 'a.b', id: 'c/d' })).toBe('a.b/c/d');
  });
});

/** Reference NATS matcher, written independently: recursive over tokens. */
function reference(filter: string[], subject: string[]): boolean {
  if (filter.length === 0) return subject.length === 0;
  const [head, ...rest] = filter;
  if (head === '>') return rest.length === 0 && subject.length > 0;
  if (subject.length === 0) return false;
  return (head === '*' || head === subject[0]) && reference(rest, subject.slice(1));
}

describe('subjectMatches', () => {
  test.each([
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a', false],
    ['a.*', 'a.b.c', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c', true],
    ['a.>', 'b.c', false],
    ['*.>', 'a', false],
    ['*.>', 'a.b', true],
    ['a.b', 'a.b.c', false],
    ['a.b.c', 'a.b', false],
    ['ab', 'a', false],
  ])('%s vs %s → %s', (filter, subject, expected) => {
    expect(subjectMatches(filter, subject)).toBe(expected);
  });

  test(`agrees with a reference matcher on random filters (seed ${(SEED + 2).toString(16)})`, () => {
    const rand = prng(SEED + 2);
    const counts = { true: 0, false: 0 };
    for (let i = 0; i < 5000; i++) {
      const filter = Array.from({ length: int(rand, 1, 5) }, () => pick(rand, ['a', 'b', '*', '*']));
      if (rand() < 0.3) filter[filter.length - 1] = '>';
      const subject = Array.from({ length: int(rand, 1, 5) }, () => pick(rand, ['a', 'b']));
      const expected = reference(filter, subject);
      expect(subjectMatches(filter.join('.'), subject.join('.'))).toBe(expected);
      counts[`${expected}`]++;
    }
    expect(counts.true).toBeGreaterThan(500);
    expect(counts.false).toBeGreaterThan(500);
  });
});
