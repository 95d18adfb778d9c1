/**
 * NCRONTAB schedules as Azure Functions timer triggers use them:
 * `{second} {minute} {hour} {day} {month} {day-of-week}`, evaluated in UTC
 * (the host's default without WEBSITE_TIME_ZONE). Fields take `*`, numbers,
 * ranges `a-b`, steps `* /n` and `a-b/n`, lists, and month/day names. As in
 * NCrontab, day and day-of-week must both match. A TimeSpan (`hh:mm:ss`) is
 * read as a fixed interval, which the host allows on dedicated plans.
 */

export interface Schedule {
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
  /** Whole-schedule description, for logs. */
  text: string;
}

const monthNames = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const dayNames = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  min: number;
  max: number;
  names?: string[];
  namesStartAt?: number;
}

const fieldSpecs: FieldSpec[] = [
  { min: 0, max: 59 },
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: monthNames, namesStartAt: 1 },
  { min: 0, max: 7, names: dayNames, namesStartAt: 0 },
];

function parseValue(text: string, spec: FieldSpec, field: string): number {
  const lower = text.toLowerCase();
  if (spec.names) {
    const index = spec.names.findIndex((n) => lower.startsWith(n));
    if (index >= 0 && /^[a-z]+$/.test(lower)) return index + (spec.namesStartAt ?? 0);
  }
  if (!/^\d+$/.test(text)) throw new Error(`Invalid value "${text}" in schedule field "${field}"`);
  const value = Number(text);
  if (value < spec.min || value > spec.max) throw new Error(`Value ${value} out of range in schedule field "${field}"`);
  return value;
}

function parseField(field: string, spec: FieldSpec): Set<number> {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const [rangeText = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`Invalid step in schedule field "${field}"`);
    let low: number;
    let high: number;
    if (rangeText === '*') {
      low = spec.min;
      high = spec.max;
    } else if (rangeText.includes('-')) {
      const [a = '', b = ''] = rangeText.split('-');
      low = parseValue(a, spec, field);
      high = parseValue(b, spec, field);
      if (low > high) throw new Error(`Invalid range in schedule field "${field}"`);
    } else {
      low = parseValue(rangeText, spec, field);
      high = stepText === undefined ? low : spec.max;
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

export function parseSchedule(expression: string): Schedule {
  const text = expression.trim();
  const timeSpan = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(text);
  if (timeSpan) {
    const [, days = '0', h = '0', m = '0', s = '0'] = timeSpan;
    const intervalMs = (((Number(days) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s)) * 1000;
    if (intervalMs <= 0) throw new Error(`Invalid timer interval "${expression}"`);
    return { text, next: (after) => new Date(after.getTime() + intervalMs) };
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(`Invalid NCRONTAB schedule "${expression}": expected 6 fields {second} {minute} {hour} {day} {month} {day-of-week}`);
  }
  const [seconds, minutes, hours, days, months, weekdays] = fields.map((f, i) => parseField(f, fieldSpecs[i]!)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (weekdays.has(7)) weekdays.add(0);

  return {
    text,
    next(after: Date): Date {
      // Walk forward, jumping whole months/days/hours/minutes when a coarser field fails.
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      const limit = after.getTime() + 5 * 366 * 24 * 3600 * 1000;
      while (t.getTime() <= limit) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!days.has(t.getUTCDate()) || !weekdays.has(t.getUTCDay())) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
          continue;
        }
        if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
          continue;
        }
        if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
          continue;
        }
        return t;
      }
      throw new Error(`Schedule "${expression}" has no occurrence in the next five years`);
    },
  };
}
