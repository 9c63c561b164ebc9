// Copy-on-write state for sandbox sessions: every session shares the loaded DB and copies only the
// objects on the path to what it changes, so opening or forking a session costs O(1), not a 2.8 MB clone.

type Container = Record<string | number, unknown>;

/** Past this many keys a copy is built as a hash table from the start (see shallowCopy). */
const MANY_KEYS = 64;

function shallowCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.slice() as T;
  if (v !== null && typeof v === 'object') {
    // Keep the prototype (tagged numbers are classes; plain data objects are Object).
    if (Object.getPrototypeOf(v) !== Object.prototype) return v;
    const keys = Object.keys(v);
    // (A '__proto__' key would hit the prototype setter on assignment: spread defines it as data.)
    if (keys.length <= MANY_KEYS || keys.includes('__proto__')) return { ...(v as object) } as T;
    // A large table (retail's 1000 orders): adding its keys one by one to an ordinary object makes V8
    // build and discard a chain of hidden classes (about 1 MB of garbage and 0.6 ms per copy); an object
    // that has had a key deleted is already a hash table, so the copy costs a third. Same keys, same order.
    const copy: Record<string, unknown> = { __cow__: undefined };
    delete copy.__cow__;
    const src = v as Record<string, unknown>;
    for (const k of keys) copy[k] = src[k];
    return copy as T;
  }
  return v;
}

/**
 * A copy-on-write view of a JSON-like tree. Reads go through `root`; writes must first call
 * `edit(path)`, which returns an object owned by this store (copied from the shared one on first touch).
 * Never mutate what `root` returns without `edit` — it may be shared with other sessions.
 */
export class CowStore<T extends object> {
  private rootNode: T;
  private owned: WeakSet<object>;

  constructor(root: T) {
    this.rootNode = root;
    this.owned = new WeakSet();
  }

  /** The current tree (read-only by convention). */
  get root(): T {
    return this.rootNode;
  }

  /**
   * Returns the node at `path`, made private to this store: each container on the way is copied once.
   * Throws TypeError when a path element does not lead to an object or array.
   */
  edit<R = any>(...path: (string | number)[]): R {
    if (!this.owned.has(this.rootNode)) {
      this.rootNode = shallowCopy(this.rootNode);
      this.owned.add(this.rootNode);
    }
    let node = this.rootNode as unknown as Container;
    for (const key of path) {
      const child = node[key];
      if (child === null || typeof child !== 'object') {
        throw new TypeError(`cannot edit ${path.join('.')}: ${String(key)} is not an object`);
      }
      if (!this.owned.has(child)) {
        const copy = shallowCopy(child) as object;
        node[key] = copy;
        this.owned.add(copy);
        node = copy as Container;
      } else {
        node = child as Container;
      }
    }
    return node as R;
  }

  /**
   * A new store starting from this store's current state. Both stores then share every node, so
   * both give up ownership: the next write on either side copies again.
   */
  fork(): CowStore<T> {
    this.owned = new WeakSet();
    return new CowStore(this.rootNode);
  }
}
