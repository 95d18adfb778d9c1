/**
 * The XML layer of the PSKC reader: DOCTYPE refusal, well-formedness,
 * parsing with fast-xml-parser and namespace resolution. fast-xml-parser's
 * removeNSPrefix only drops prefixes and cannot tell a PSKC element from a
 * look-alike in another namespace, so namespaces are resolved here.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { FileError, quoteValue } from '../core/problems.js';

export const PSKC_NS = 'urn:ietf:params:xml:ns:keyprov:pskc';
export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
export const XENC_NS = 'http://www.w3.org/2001/04/xmlenc#';
export const XENC11_NS = 'http://www.w3.org/2009/xmlenc11#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** A PSKC document is about 8 levels deep; anything far deeper is hostile. */
const MAX_NESTING_DEPTH = 32;

export interface XmlElement {
  ns: string;
  name: string;
  /** Unprefixed attributes only (PSKC uses no namespaced attributes), entity-decoded. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated, trimmed, entity-decoded character data. */
  text: string;
}

type ParsedNode = Record<string, unknown>;

/** The reader's parser options, exported so the benchmark's parser floor uses exactly these. */
export const PSKC_XML_PARSER_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // DOCTYPEs are refused before parsing, so only the predefined and numeric references remain; they are decoded here.
  processEntities: false,
  trimValues: true,
  maxNestedTags: MAX_NESTING_DEPTH,
  // No callbacks use paths; building jPath strings for every tag costs about a quarter of the parse.
  jPath: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
} as const;

const parser = new XMLParser(PSKC_XML_PARSER_OPTIONS);

/**
 * An algorithm or namespace URI, quoted only when it has a URI's shape: a
 * scheme and a colon, which no base32, hex or base64 secret holds.
 */
export function quoteUri(value: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\S{1,200}$/.test(value) ? quoteValue(value, 120) : 'a value that is not a URI';
}

export function malformed(fileName: string, detail: string, line?: number): FileError {
  return new FileError('PSKC_MALFORMED', `${fileName}${line ? ` line ${line}` : ''}: ${detail}`, line);
}

function refuseDeclarations(fileName: string, text: string): void {
  const match = /<!(DOCTYPE|ENTITY)/i.exec(text);
  if (match) {
    const line = lineAt(text, match.index);
    throw new FileError(
      'PSKC_DOCTYPE_REFUSED',
      `${fileName} line ${line}: the XML declares a ${match[1]!.toUpperCase()}, which is refused (entity-expansion attacks). PSKC files need none; ask the vendor for a file without it.`,
      line,
    );
  }
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

const PREDEFINED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeReferences(fileName: string, value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&([^;&\s]*)(;?)/g, (whole, name: string, semicolon: string) => {
    if (semicolon) {
      const predefined = PREDEFINED_ENTITIES[name];
      if (predefined !== undefined) return predefined;
      const numeric = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
      if (numeric) {
        const codePoint = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2]!, 10);
        if (codePoint <= 0x10ffff) return String.fromCodePoint(codePoint);
      }
    }
    // What follows the ampersand may be the rest of a secret: it is not quoted.
    throw malformed(
      fileName,
      `a reference (&...;) is neither a predefined XML entity nor a character reference (${whole.length} characters long). Write a literal "&" as &amp;.`,
    );
  });
}

/** Generic reasons for the validator's error codes; its own messages are never shown. */
const XML_FAULTS: Record<string, string> = {
  InvalidTag: 'a tag is malformed, unclosed or closed out of order',
  InvalidAttr: 'an attribute is malformed, repeated or lacks a quoted value',
  InvalidChar: 'a character is not allowed where it stands (a literal "&" or "<" in text, for example)',
  InvalidXml: 'the document structure is broken (text outside the root element, several roots or a missing start tag)',
};

export function parseDocument(fileName: string, text: string): XmlElement {
  refuseDeclarations(fileName, text);
  // fast-xml-parser's parser accepts unclosed and mismatched tags; the validator does not.
  const validation = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (validation !== true) {
    // The validator's text quotes tag names and text, which can be a secret: only where, and what kind of fault.
    const { line, col, code } = validation.err;
    const where = line > 0 ? ` line ${line}${typeof col === 'number' && col > 0 ? `, column ${col}` : ''}` : '';
    throw new FileError(
      'PSKC_MALFORMED',
      `${fileName}${where}: the file is not well-formed XML (${XML_FAULTS[code] ?? XML_FAULTS.InvalidXml!}).`,
      line > 0 ? line : undefined,
    );
  }
  let nodes: ParsedNode[];
  try {
    nodes = parser.parse(text) as ParsedNode[];
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    if (/nested/i.test(message))
      throw malformed(fileName, `the XML is nested deeper than ${MAX_NESTING_DEPTH} levels; a PSKC file needs about 8.`);
    // The parser's own messages quote file content, which may be secret.
    throw malformed(fileName, 'the file is not well-formed XML.');
  }
  const roots: XmlElement[] = [];
  const topScope: Scope = { prefixes: new Map([['xml', XML_NS]]), resolved: new Map() };
  for (const node of nodes) {
    const tag = tagOf(node);
    if (tag === undefined || tag === '#text') continue;
    roots.push(toElement(fileName, node, tag, topScope));
  }
  if (roots.length !== 1) throw malformed(fileName, `the XML must have exactly one root element; it has ${roots.length}.`);
  return roots[0]!;
}

function tagOf(node: ParsedNode): string | undefined {
  for (const key in node) if (key !== ':@') return key;
  return undefined;
}

interface Scope {
  prefixes: ReadonlyMap<string, string>;
  /** Qualified tag -> resolved name, so each distinct tag is split and looked up once per scope. */
  resolved: Map<string, { ns: string; name: string }>;
}

const NO_ATTRIBUTES: Record<string, string> = Object.freeze({});

function resolveTag(fileName: string, tag: string, scope: Scope): { ns: string; name: string } {
  let resolved = scope.resolved.get(tag);
  if (!resolved) {
    const colon = tag.indexOf(':');
    const prefix = colon === -1 ? '' : tag.slice(0, colon);
    const ns = scope.prefixes.get(prefix);
    if (ns === undefined && prefix !== '')
      throw malformed(fileName, 'an element uses a namespace prefix that is not declared (a missing xmlns:prefix attribute).');
    resolved = { ns: ns ?? '', name: colon === -1 ? tag : tag.slice(colon + 1) };
    scope.resolved.set(tag, resolved);
  }
  return resolved;
}

function toElement(fileName: string, node: ParsedNode, tag: string, parentScope: Scope): XmlElement {
  const rawAttrs = node[':@'] as Record<string, string> | undefined;
  let scope = parentScope;
  let attrs = NO_ATTRIBUTES;
  if (rawAttrs) {
    attrs = {};
    let declared: Map<string, string> | undefined;
    for (const attrName in rawAttrs) {
      const value = decodeReferences(fileName, rawAttrs[attrName]!);
      if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
        declared ??= new Map(parentScope.prefixes);
        declared.set(attrName === 'xmlns' ? '' : attrName.slice(6), value);
      } else if (!attrName.includes(':')) {
        attrs[attrName] = value;
      }
    }
    if (declared) scope = { prefixes: declared, resolved: new Map() };
  }
  const { ns, name } = resolveTag(fileName, tag, scope);
  const children: XmlElement[] = [];
  let text = '';
  for (const childNode of node[tag] as ParsedNode[]) {
    const childTag = tagOf(childNode);
    if (childTag === undefined) continue;
    if (childTag === '#text') text += String(childNode['#text']);
    else children.push(toElement(fileName, childNode, childTag, scope));
  }
  return { ns, name, attrs, children, text: decodeReferences(fileName, text) };
}

/** An attribute the pre-RFC drafts wrote in either case (Algorithm / algorithm, Length / length), trimmed. */
export function draftAttribute(element: XmlElement | undefined, name: string): string | undefined {
  if (!element) return undefined;
  return (element.attrs[name] ?? element.attrs[name.charAt(0).toLowerCase() + name.slice(1)])?.trim();
}

// Plain loops: these run about fifteen times per key, and a callback per call shows in a 10,000-key file.
export function child(element: XmlElement | undefined, ns: string, name: string): XmlElement | undefined {
  if (!element) return undefined;
  for (const c of element.children) if (c.name === name && c.ns === ns) return c;
  return undefined;
}

export function childrenNamed(element: XmlElement, ns: string, name: string): XmlElement[] {
  const found: XmlElement[] = [];
  for (const c of element.children) if (c.name === name && c.ns === ns) found.push(c);
  return found;
}

/** What pickChildren found: the first child of each wanted name, and the names that occur more than once. */
export interface PickedChildren<N extends string> {
  first: Partial<Record<N, XmlElement>>;
  /** In the order of the names asked for. */
  repeated: N[];
}

const NOTHING_PICKED: PickedChildren<never> = Object.freeze({
  first: Object.freeze({}),
  repeated: Object.freeze([]) as unknown as never[],
});

/**
 * The children named `names` in `ns`, in one pass over the element: a key
 * asks for about twenty elements, and a scan (and an array) for each showed
 * in a 10,000-key file.
 */
export function pickChildren<N extends string>(element: XmlElement | undefined, ns: string, names: readonly N[]): PickedChildren<N> {
  if (!element) return NOTHING_PICKED;
  const first: Partial<Record<N, XmlElement>> = {};
  let repeated: N[] | undefined;
  for (const c of element.children) {
    if (c.ns !== ns || !(names as readonly string[]).includes(c.name)) continue;
    const name = c.name as N;
    if (first[name] === undefined) first[name] = c;
    else if (!repeated?.includes(name)) (repeated ??= []).push(name);
  }
  if (repeated && repeated.length > 1) repeated.sort((a, b) => names.indexOf(a) - names.indexOf(b));
  return { first, repeated: repeated ?? NOTHING_PICKED.repeated };
}

/** The names of `names` that occur more than once among the element's children in `ns`. */
export function repeatedChildren(element: XmlElement | undefined, ns: string, names: readonly string[]): string[] {
  if (!element) return [];
  return names.filter((name) => childrenNamed(element, ns, name).length > 1);
}

/** PBKDF2 parameters appear unqualified, in pkcs5 or in xenc11 depending on the producer: match their local name. */
export function childByLocalName(element: XmlElement | undefined, name: string): XmlElement | undefined {
  if (!element) return undefined;
  for (const c of element.children) if (c.name === name) return c;
  return undefined;
}

/** An xs:integer of at most 15 digits (safe as a JS number), or undefined. */
export function parseXmlInteger(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?\d{1,15}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

export function decodeBase64(text: string): Buffer | undefined {
  const compact = /\s/.test(text) ? text.replace(/\s+/g, '') : text;
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/**
 * Line of the n-th KeyPackage start tag (Device in the old draft layout),
 * found by a text scan only when a message needs one. When the scan's count
 * differs from the parsed count (a KeyPackage inside a comment, say) lines
 * are left out rather than wrong.
 */
export class KeyPackageLines {
  private lines: number[] | null | undefined;

  constructor(
    private readonly text: string,
    private readonly expectedCount: number,
    private readonly elementName: 'KeyPackage' | 'Device' = 'KeyPackage',
  ) {}

  of(index: number): number | undefined {
    if (this.lines === undefined) this.lines = this.scan();
    return this.lines?.[index];
  }

  private scan(): number[] | null {
    const starts: number[] = [];
    const pattern = new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${this.elementName}(?=[\\s/>])`, 'g');
    for (let m = pattern.exec(this.text); m !== null; m = pattern.exec(this.text)) starts.push(m.index);
    if (starts.length !== this.expectedCount) return null;
    const lines: number[] = [];
    let line = 1;
    let newline = this.text.indexOf('\n');
    for (const start of starts) {
      while (newline !== -1 && newline < start) {
        line++;
        newline = this.text.indexOf('\n', newline + 1);
      }
      lines.push(line);
    }
    return lines;
  }
}
