// Reads compiled ARM templates for the infra tests: walks nested (module) deployments and evaluates the
// subset of the ARM expression language that Bicep emits, so tests can assert concrete values (role GUIDs,
// scopes, app settings) rather than expression text. Values only known at deployment time (reference(),
// uniqueString(), ...) evaluate to an opaque marker string «source text».

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ArmResource {
  type: string;
  name: string;
  [key: string]: Json;
}

export interface ArmTemplate {
  parameters?: Record<string, { type: string; defaultValue?: Json; allowedValues?: Json[] }>;
  variables?: Record<string, Json>;
  resources: ArmResource[] | Record<string, ArmResource>;
  outputs?: Record<string, { type: string; value: Json }>;
  [key: string]: Json | undefined;
}

export interface TemplateScope {
  template: ArmTemplate;
  /**
   * Parameter values passed by the parent deployment (evaluated in the parent's scope): `{ value }`, or one
   * expression giving `{ value }` when the value depends on a condition.
   */
  passed?: Record<string, { value?: Json } | string>;
  parent?: TemplateScope;
  /** Values for the top-level template's parameters that have no default. */
  overrides?: Record<string, Json>;
  /** Module path, e.g. "pipeline/storage". */
  path: string;
  /** The iteration of a resource loop (`copyIndex()`), while evaluating one of its resources. */
  copyIndex?: number;
  /** Values of the enclosing lambdas' variables (`lambdaVariables('x')`), innermost last. */
  lambdaVariables?: Record<string, Json>;
}

export interface FoundResource {
  raw: ArmResource;
  scope: TemplateScope;
  /** The resource with every expression evaluated (one per iteration for a resource loop). */
  value: { [key: string]: Json };
  /**
   * False when its own condition, or that of a module it is in, is false for these parameters. A condition
   * only known at deployment time counts as true.
   */
  deployed: boolean;
}

export function isMarker(value: Json): boolean {
  return typeof value === 'string' && value.startsWith('«');
}

/** True when any part of the value is only known at deployment time. */
export function hasDeploymentTimePart(value: Json): boolean {
  return JSON.stringify(value).includes('«');
}

/** A value as text: strings as they are, anything else as JSON. */
export function asText(value: Json | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

const marker = (source: string) => `«${source}»`;

function resourcesOf(template: ArmTemplate): ArmResource[] {
  return Array.isArray(template.resources) ? template.resources : Object.values(template.resources);
}

/** Every resource in the template and its nested deployments, depth first; resource loops expanded. */
export function collectResources(template: ArmTemplate, overrides: Record<string, Json> = {}): FoundResource[] {
  const found: FoundResource[] = [];
  const visit = (scope: TemplateScope, parentDeployed: boolean) => {
    for (const raw of resourcesOf(scope.template)) {
      // A module's inner template is evaluated in its own scope (Bicep emits expressionEvaluationOptions "inner").
      const outer = raw.type === 'Microsoft.Resources/deployments' ? withoutInnerTemplate(raw) : raw;
      const { copy, ...body } = outer as ArmResource & { copy?: { name: string; count: Json } };
      const count = copy ? evaluateJson(copy.count, scope) : undefined;
      if (copy && typeof count !== 'number') throw new Error(`${scope.path || 'main'}: loop ${copy.name} has no known count`);
      const iterations = copy ? Array.from({ length: count as number }, (_, index) => ({ ...scope, copyIndex: index })) : [scope];
      for (const iteration of iterations) {
        const value = evaluateJson(body, iteration) as { [key: string]: Json };
        const deployed = parentDeployed && value['condition'] !== false;
        found.push({ raw, scope: iteration, value, deployed });
        if (raw.type === 'Microsoft.Resources/deployments') {
          const properties = raw['properties'] as { template: ArmTemplate; parameters?: Record<string, { value?: Json }> };
          visit(
            {
              template: properties.template,
              passed: properties.parameters ?? {},
              parent: iteration,
              path: scope.path ? `${scope.path}/${asText(value['name'])}` : asText(value['name']),
            },
            deployed,
          );
        }
      }
    }
  };
  visit({ template, overrides, path: '' }, true);
  return found;
}

function withoutInnerTemplate(deployment: ArmResource): ArmResource {
  const properties = { ...(deployment['properties'] as { [key: string]: Json }) };
  delete properties['template'];
  return { ...deployment, properties };
}

function resolveParameter(scope: TemplateScope, name: string): Json {
  const passed = scope.passed?.[name];
  if (typeof passed === 'string') {
    // A value that depends on a condition comes as one expression for the whole `{ value }` object.
    const whole = scope.parent ? evaluateJson(passed, scope.parent) : null;
    if (whole === null || typeof whole !== 'object' || Array.isArray(whole) || !('value' in whole))
      throw new Error(`${scope.path}: parameter ${name} is passed as ${passed}`);
    return whole['value'] ?? null;
  }
  if (passed?.value !== undefined && scope.parent) return evaluateJson(passed.value, scope.parent);
  if (scope.overrides && name in scope.overrides) return scope.overrides[name] ?? null;
  const declared = scope.template.parameters?.[name];
  if (!declared) throw new Error(`${scope.path || 'main'}: no parameter ${name}`);
  if (declared.defaultValue === undefined) throw new Error(`${scope.path || 'main'}: parameter ${name} has no value`);
  return evaluateJson(declared.defaultValue, scope);
}

/** Deep-evaluates strings that are ARM expressions ("[...]"). */
export function evaluateJson(value: Json, scope: TemplateScope): Json {
  if (typeof value === 'string') {
    if (value.startsWith('[[')) return value.slice(1);
    if (value.startsWith('[') && value.endsWith(']')) return evaluateExpression(value.slice(1, -1), scope);
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => evaluateJson(item, scope));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [asText(evaluateJson(key, scope)), evaluateJson(item, scope)]));
  }
  return value;
}

type Node =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'call'; name: string; args: Node[]; source: string }
  | { kind: 'property'; target: Node; name: string; source: string }
  | { kind: 'index'; target: Node; index: Node; source: string };

function parse(text: string): Node {
  let position = 0;
  const skip = () => {
    while (text[position] === ' ') position++;
  };
  const expect = (char: string) => {
    skip();
    if (text[position] !== char) throw new Error(`expected '${char}' at ${position} in ${text}`);
    position++;
  };
  const primary = (): Node => {
    skip();
    const start = position;
    let node: Node;
    if (text[position] === "'") {
      let value = '';
      position++;
      for (;;) {
        if (position >= text.length) throw new Error(`unterminated string in ${text}`);
        if (text[position] === "'") {
          if (text[position + 1] === "'") {
            value += "'";
            position += 2;
            continue;
          }
          position++;
          break;
        }
        value += text[position++];
      }
      node = { kind: 'string', value };
    } else if (/[-0-9]/.test(text[position] ?? '')) {
      const match = /^-?\d+/.exec(text.slice(position));
      if (!match) throw new Error(`bad number at ${position} in ${text}`);
      position += match[0].length;
      node = { kind: 'number', value: Number(match[0]) };
    } else {
      const match = /^[A-Za-z_][\w]*/.exec(text.slice(position));
      if (!match) throw new Error(`unexpected '${text[position]}' at ${position} in ${text}`);
      position += match[0].length;
      expect('(');
      const args: Node[] = [];
      skip();
      if (text[position] === ')') position++;
      else {
        for (;;) {
          args.push(expression());
          skip();
          if (text[position] === ',') {
            position++;
            continue;
          }
          expect(')');
          break;
        }
      }
      node = { kind: 'call', name: match[0], args, source: text.slice(start, position) };
    }
    for (;;) {
      skip();
      if (text[position] === '.') {
        position++;
        const match = /^[A-Za-z_$][\w$]*/.exec(text.slice(position));
        if (!match) throw new Error(`bad property at ${position} in ${text}`);
        position += match[0].length;
        node = { kind: 'property', target: node, name: match[0], source: text.slice(start, position) };
      } else if (text[position] === '[') {
        position++;
        const index = expression();
        expect(']');
        node = { kind: 'index', target: node, index, source: text.slice(start, position) };
      } else {
        return node;
      }
    }
  };
  const expression = (): Node => primary();
  const node = expression();
  skip();
  if (position !== text.length) throw new Error(`trailing text at ${position} in ${text}`);
  return node;
}

/** "Microsoft.Storage/storageAccounts/blobServices" + [a, b] -> "Microsoft.Storage/storageAccounts/a/blobServices/b" */
function resourcePath(type: string, names: string[]): string {
  const [namespace, ...types] = type.split('/');
  const parts = [namespace];
  types.forEach((segment, index) => parts.push(segment, names[index] ?? '?'));
  return parts.join('/');
}

function evaluateExpression(text: string, scope: TemplateScope): Json {
  return evaluateNode(parse(text), scope);
}

function evaluateNode(node: Node, scope: TemplateScope): Json {
  switch (node.kind) {
    case 'string':
    case 'number':
      return node.value;
    case 'property': {
      const output = moduleOutput(node, scope);
      if (output !== undefined) return output;
      const target = evaluateNode(node.target, scope);
      if (isMarker(target)) return marker(node.source);
      if (target === null || typeof target !== 'object' || Array.isArray(target))
        throw new Error(`cannot read .${node.name} in ${node.source}`);
      if (!(node.name in target)) throw new Error(`no property ${node.name} in ${node.source}`);
      return target[node.name] ?? null;
    }
    case 'index': {
      const target = evaluateNode(node.target, scope);
      const index = evaluateNode(node.index, scope);
      if (isMarker(target) || isMarker(index)) return marker(node.source);
      if (Array.isArray(target) && typeof index === 'number') return target[index] ?? null;
      if (target && typeof target === 'object' && !Array.isArray(target) && typeof index === 'string') return target[index] ?? null;
      throw new Error(`cannot index ${node.source}`);
    }
    case 'call':
      return evaluateCall(node, scope);
  }
}

/** `reference(<id of a module deployment>).outputs.<name>.value`: the module's output, evaluated in the module. */
function moduleOutput(node: Extract<Node, { kind: 'property' }>, scope: TemplateScope): Json | undefined {
  const output = node.target;
  if (node.name !== 'value' || output.kind !== 'property') return undefined;
  const outputs = output.target;
  if (outputs.kind !== 'property' || outputs.name !== 'outputs') return undefined;
  const reference = outputs.target;
  if (reference.kind !== 'call' || reference.name !== 'reference' || !reference.args[0]) return undefined;
  const id = evaluateNode(reference.args[0], scope);
  const match = typeof id === 'string' ? /Microsoft\.Resources\/deployments\/([^/]+)$/.exec(id) : null;
  if (!match) return undefined;
  const deployment = resourcesOf(scope.template).find(
    (resource) => resource.type === 'Microsoft.Resources/deployments' && evaluateJson(resource.name, scope) === match[1],
  );
  if (!deployment) throw new Error(`no module deployment ${match[1]} in ${scope.path || 'main'}`);
  const properties = deployment['properties'] as { template: ArmTemplate; parameters?: Record<string, { value?: Json }> };
  const declared = properties.template.outputs?.[output.name];
  if (!declared) throw new Error(`module ${match[1]} has no output ${output.name}`);
  const inner: TemplateScope = {
    template: properties.template,
    passed: properties.parameters ?? {},
    parent: scope,
    path: scope.path ? `${scope.path}/${match[1]}` : (match[1] ?? ''),
  };
  return evaluateJson(declared.value, inner);
}

/** The public cloud's values of environment() that the templates use. */
const AZURE_CLOUD: Json = {
  name: 'AzureCloud',
  suffixes: { storage: 'core.windows.net', keyvaultDns: '.vault.azure.net' },
  authentication: { loginEndpoint: 'https://login.microsoftonline.com/' },
};

/** Calls whose arguments are not all evaluated first: if() evaluates one branch, map() and filter() take a lambda. */
function evaluateSpecialCall(node: Extract<Node, { kind: 'call' }>, scope: TemplateScope): { value: Json } | undefined {
  switch (node.name) {
    case 'if': {
      const condition = evaluateNode(node.args[0]!, scope);
      if (isMarker(condition)) return { value: marker(node.source) };
      return { value: evaluateNode(node.args[condition ? 1 : 2]!, scope) };
    }
    case 'map':
    case 'filter': {
      const items = evaluateNode(node.args[0]!, scope);
      if (isMarker(items)) return { value: marker(node.source) };
      if (!Array.isArray(items)) throw new Error(`${node.name}() of a non-array in ${node.source}`);
      const lambda = node.args[1];
      if (lambda?.kind !== 'call' || lambda.name !== 'lambda' || lambda.args.length !== 2)
        throw new Error(`${node.name}() without a one-variable lambda in ${node.source}`);
      const variable = evaluateNode(lambda.args[0]!, scope);
      const apply = (item: Json) =>
        evaluateNode(lambda.args[1]!, { ...scope, lambdaVariables: { ...scope.lambdaVariables, [asText(variable)]: item } });
      if (node.name === 'map') return { value: items.map(apply) };
      const kept: Json[] = [];
      for (const item of items) {
        const keep = apply(item);
        if (isMarker(keep)) return { value: marker(node.source) };
        if (keep) kept.push(item);
      }
      return { value: kept };
    }
    default:
      return undefined;
  }
}

function evaluateCall(node: Extract<Node, { kind: 'call' }>, scope: TemplateScope): Json {
  const special = evaluateSpecialCall(node, scope);
  if (special) return special.value;
  const args = node.args.map((arg) => evaluateNode(arg, scope));
  const anyMarker = args.some(isMarker);
  switch (node.name) {
    case 'parameters':
      return resolveParameter(scope, asText(args[0]));
    case 'variables': {
      const name = asText(args[0]);
      const variable = scope.template.variables?.[name];
      if (variable === undefined) throw new Error(`no variable ${name}`);
      return evaluateJson(variable, scope);
    }
    case 'format':
      // {{ and }} are literal braces; {N} is argument N.
      return asText(args[0]).replace(/\{\{|\}\}|\{(\d+)\}/g, (match, index: string | undefined) =>
        index === undefined ? match[0]! : asText(args[Number(index) + 1] ?? null),
      );
    case 'concat':
      return args.every((arg) => Array.isArray(arg)) ? (args as Json[][]).flat() : args.map((arg) => asText(arg)).join('');
    case 'resourceId':
    case 'subscriptionResourceId':
      return resourcePath(
        asText(args[0]),
        args.slice(1).map((arg) => asText(arg)),
      );
    case 'extensionResourceId':
      return `${asText(args[0] ?? null)}/providers/${resourcePath(
        asText(args[1]),
        args.slice(2).map((arg) => asText(arg)),
      )}`;
    case 'string':
      return asText(args[0] ?? null);
    case 'not':
      return anyMarker ? marker(node.source) : !args[0];
    case 'empty':
      if (anyMarker) return marker(node.source);
      return (
        args[0] === '' ||
        args[0] === null ||
        (Array.isArray(args[0]) && args[0].length === 0) ||
        (typeof args[0] === 'object' && args[0] !== null && Object.keys(args[0]).length === 0)
      );
    case 'equals':
      return anyMarker ? marker(node.source) : JSON.stringify(args[0]) === JSON.stringify(args[1]);
    case 'union':
      return Object.assign({}, ...(args as object[])) as Json;
    case 'createObject': {
      const result: { [key: string]: Json } = {};
      for (let index = 0; index + 1 < args.length; index += 2) result[asText(args[index])] = args[index + 1] ?? null;
      return result;
    }
    case 'toLower':
      return anyMarker ? marker(node.source) : asText(args[0]).toLowerCase();
    case 'and':
      return anyMarker ? marker(node.source) : args.every(Boolean);
    case 'or':
      return anyMarker ? marker(node.source) : args.some(Boolean);
    case 'null':
      return null;
    case 'true':
      return true;
    case 'false':
      return false;
    case 'createArray':
      return args;
    case 'length':
      if (anyMarker) return marker(node.source);
      if (typeof args[0] === 'string' || Array.isArray(args[0])) return args[0].length;
      if (args[0] !== null && typeof args[0] === 'object') return Object.keys(args[0]).length;
      throw new Error(`length() of ${JSON.stringify(args[0])}`);
    case 'add':
    case 'sub':
    case 'mul':
    case 'div': {
      if (anyMarker) return marker(node.source);
      const [a, b] = args.map(Number) as [number, number];
      return node.name === 'add' ? a + b : node.name === 'sub' ? a - b : node.name === 'mul' ? a * b : Math.trunc(a / b);
    }
    case 'split':
      return anyMarker ? marker(node.source) : asText(args[0]).split(asText(args[1]));
    case 'trim':
      return anyMarker ? marker(node.source) : asText(args[0]).trim();
    case 'replace':
      return anyMarker ? marker(node.source) : asText(args[0]).split(asText(args[1])).join(asText(args[2]));
    case 'copyIndex': {
      if (scope.copyIndex === undefined) throw new Error(`copyIndex() outside a resource loop in ${node.source}`);
      return scope.copyIndex + (typeof args[0] === 'number' ? args[0] : 0);
    }
    case 'lambdaVariables': {
      const name = asText(args[0]);
      if (!scope.lambdaVariables || !(name in scope.lambdaVariables)) throw new Error(`no lambda variable ${name} in ${node.source}`);
      return scope.lambdaVariables[name] ?? null;
    }
    case 'environment':
      return AZURE_CLOUD;
    default:
      // Deployment-time values: reference(), uniqueString(), subscription(), tenant(), environment(), guid(), ...
      return marker(node.source);
  }
}
