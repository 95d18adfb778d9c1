/**
 * HTTP route templates as the Functions host reads them (ASP.NET Core
 * routing): literal segments match case-insensitively, `{name}` takes one
 * segment, `{name?}` is optional, `{*rest}` takes the remainder, and a
 * constraint such as `{id:int}` or `{id:alpha}` narrows what matches.
 */

export interface CompiledRoute {
  template: string;
  match(path: string): Record<string, string> | undefined;
}

const constraintPatterns: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[a-z]+$/i,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  decimal: /^-?\d+(\.\d+)?$/,
  double: /^-?\d+(\.\d+)?$/,
  float: /^-?\d+(\.\d+)?$/,
};

interface SegmentPart {
  literal?: string;
  param?: { name: string; optional: boolean; catchAll: boolean; constraints: string[] };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function parseParam(body: string): NonNullable<SegmentPart['param']> {
  let text = body;
  const catchAll = text.startsWith('*');
  if (catchAll) text = text.replace(/^\*+/, '');
  const [rawName = '', ...constraints] = text.split(':');
  let name = rawName;
  let optional = false;
  if (name.endsWith('?')) {
    optional = true;
    name = name.slice(0, -1);
  }
  const cleaned = constraints.map((c) => {
    if (c.endsWith('?')) optional = true;
    return c.replace(/\?$/, '');
  });
  const defaultIndex = name.indexOf('=');
  if (defaultIndex >= 0) {
    optional = true;
    name = name.slice(0, defaultIndex);
  }
  return { name, optional, catchAll, constraints: cleaned };
}

function checkConstraints(value: string, constraints: string[]): boolean {
  return constraints.every((c) => {
    const pattern = constraintPatterns[c.toLowerCase()];
    if (pattern) return pattern.test(value);
    const regex = /^regex\((.*)\)$/.exec(c);
    if (regex?.[1]) return new RegExp(regex[1], 'i').test(value);
    return true; // Unknown constraints (length, min, ...) are not worth refusing locally.
  });
}

export function compileRoute(template: string): CompiledRoute {
  const trimmed = template.replace(/^\/+|\/+$/g, '');
  const params: NonNullable<SegmentPart['param']>[] = [];
  let pattern = '^';
  const segments = trimmed === '' ? [] : trimmed.split('/');
  segments.forEach((segment, index) => {
    const parts = segment.split(/(\{[^}]+\})/).filter((p) => p !== '');
    const whole = parts.length === 1 && parts[0]?.startsWith('{');
    let segmentPattern = '';
    for (const part of parts) {
      if (part.startsWith('{') && part.endsWith('}')) {
        const param = parseParam(part.slice(1, -1));
        params.push(param);
        const capture = param.catchAll ? '(.*)' : '([^/]+)';
        segmentPattern += whole && param.optional ? capture.replace('+', '*') : capture;
      } else {
        segmentPattern += escapeRegExp(part);
      }
    }
    const separator = index === 0 ? '' : '/';
    const lastParam = params[params.length - 1];
    if (whole && lastParam && (lastParam.optional || lastParam.catchAll)) {
      // An optional trailing segment may be missing along with its slash.
      pattern += `(?:${separator}${segmentPattern})?`;
    } else {
      pattern += separator + segmentPattern;
    }
  });
  pattern += '/?$';
  const regex = new RegExp(pattern, 'i');
  return {
    template,
    match(path: string) {
      const found = regex.exec(path.replace(/^\/+/, ''));
      if (!found) return undefined;
      const values: Record<string, string> = {};
      for (let i = 0; i < params.length; i++) {
        const param = params[i]!;
        const raw = found[i + 1];
        if (raw === undefined || raw === '') {
          if (!param.optional && !param.catchAll) return undefined;
          continue;
        }
        let value: string;
        try {
          value = param.catchAll ? raw : decodeURIComponent(raw);
        } catch {
          return undefined;
        }
        if (!checkConstraints(value, param.constraints)) return undefined;
        values[param.name] = value;
      }
      return values;
    },
  };
}
