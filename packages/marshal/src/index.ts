import {
  InvalidArgumentError,
  type MemoryLedger,
  StateError,
  ledger as defaultLedger,
  tf,
} from '@edkm/core';

/** Host copies; an int32 index list whose values fit 16 bits may be kept as Uint16Array (half the bytes). */
type HostArray = Float32Array | Int32Array | Uint16Array | Uint8Array;
export type SavedDtype = 'float32' | 'int32' | 'bool';

/** Where saved tensors live between the forward and the backward pass. */
export type OffloadPolicy = 'always' | 'never' | { aboveBytes: number };

export interface MarshalerOptions {
  /** Which saved tensors move to the host ('always' by default). */
  policy?: OffloadPolicy;
  /** Device bytes that saved tensors may hold at most; the largest are offloaded first. */
  maxDeviceBytes?: number;
  /** Ledger that receives bytesOffloaded / bytesDeduplicated / copies (the default ledger if omitted). */
  ledger?: MemoryLedger;
}

/** A saved tensor: opaque, valid until released, tied to the marshaler that made it. */
export interface Handle {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: SavedDtype;
  readonly byteSize: number;
}

interface Entry {
  shape: number[];
  dtype: SavedDtype;
  byteSize: number;
  refs: number;
  /** Device copy (kept until the host copy exists, or for good when not offloaded). */
  device?: tf.Tensor;
  host?: HostArray;
  pending?: Promise<void>;
  hash?: number;
  dataId?: object;
}

interface HandleImpl extends Handle {
  owner: Marshaler;
  entry: Entry;
  released: boolean;
}

let nextId = 1;

/**
 * Saves tensors for a backward pass off the accelerator and brings them back on demand. A tensor
 * already saved — the same tfjs data buffer (reshapes and clones share one) or, once copied, the
 * same contents — is stored once and reference-counted.
 */
export class Marshaler {
  private readonly policy: OffloadPolicy;
  private readonly maxDeviceBytes: number;
  private readonly ledger: MemoryLedger;
  private readonly byDataId = new WeakMap<object, Entry>();
  private readonly byHash = new Map<number, Entry[]>();
  private readonly entries = new Set<Entry>();
  private counters = { bytesOffloaded: 0, bytesDeduplicated: 0, copies: 0 };

  constructor(options: MarshalerOptions = {}) {
    this.policy = options.policy ?? 'always';
    if (typeof this.policy === 'object' && !(this.policy.aboveBytes >= 0)) {
      throw new InvalidArgumentError(
        `policy.aboveBytes must be >= 0, got ${this.policy.aboveBytes}`,
      );
    }
    this.maxDeviceBytes = options.maxDeviceBytes ?? Number.POSITIVE_INFINITY;
    if (!(this.maxDeviceBytes >= 0))
      throw new InvalidArgumentError(`maxDeviceBytes must be >= 0, got ${options.maxDeviceBytes}`);
    this.ledger = options.ledger ?? defaultLedger;
  }

  /**
   * Saves a device tensor. The copy to the host starts now and completes asynchronously (the
   * device copy is kept until then), so the forward pass does not wait for it.
   */
  save(tensor: tf.Tensor): Handle {
    if (tensor.isDisposed) throw new StateError('Marshaler.save: the tensor is disposed');
    const dtype = checkDtype(tensor.dtype);
    const known = this.byDataId.get(tensor.dataId);
    if (known && this.entries.has(known)) return this.reuse(known);
    const entry: Entry = {
      shape: tensor.shape.slice(),
      dtype,
      byteSize: tensor.size * 4,
      refs: 0,
      device: tensor.clone(),
      dataId: tensor.dataId,
    };
    this.byDataId.set(tensor.dataId, entry);
    this.entries.add(entry);
    if (this.shouldOffload(entry.byteSize)) this.startCopy(entry);
    this.enforceBudget(entry);
    return this.handle(entry);
  }

  /**
   * Saves data that is already on the host (no device copy is made until load()). An int32 index
   * list may be passed as a Uint16Array (a uniquified tensor's rows, U ≤ 65,536): it stays 16-bit
   * on the host and is widened to int32 on load.
   */
  saveHost(
    data: HostArray,
    shape: number[],
    dtype: SavedDtype = data instanceof Float32Array ? 'float32' : 'int32',
  ): Handle {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length)
      throw new InvalidArgumentError(
        `saveHost: ${data.length} values do not fill shape [${shape}]`,
      );
    const hash = hashBytes(data);
    const same = this.byHash
      .get(hash)
      ?.find((e) => e.host && sameBytes(e.host, data) && sameShape(e.shape, shape));
    if (same) {
      this.counters.bytesDeduplicated += data.byteLength;
      this.ledger.count('bytesDeduplicated', data.byteLength);
      return this.reuse(same);
    }
    const entry: Entry = {
      shape: shape.slice(),
      dtype,
      byteSize: size * 4,
      refs: 0,
      host: data,
      hash,
    };
    this.index(entry);
    this.entries.add(entry);
    this.ledger.allocateHost(data.byteLength);
    return this.handle(entry);
  }

  /** The saved tensor on the current backend (a new tensor the caller disposes). */
  load(handle: Handle): tf.Tensor {
    const entry = this.entryOf(handle, 'load');
    if (entry.device && !entry.device.isDisposed) return entry.device.clone();
    return tf.tensor(widen(entry.host!), entry.shape, entry.dtype);
  }

  /**
   * Brings offloaded tensors back to the device ahead of use, in the order given (pass handles
   * in reverse order of saving for a backward pass). Returns the loaded tensors.
   */
  async prefetch(handles: Handle[]): Promise<tf.Tensor[]> {
    const out: tf.Tensor[] = [];
    for (const h of handles) {
      const entry = this.entryOf(h, 'prefetch');
      await entry.pending;
      out.push(this.load(h));
    }
    return out;
  }

  /** Drops a handle; the stored copy is freed with its last handle. */
  release(handle: Handle): void {
    const entry = this.entryOf(handle, 'release');
    (handle as HandleImpl).released = true;
    if (--entry.refs > 0) return;
    this.entries.delete(entry);
    entry.device?.dispose();
    entry.device = undefined;
    const shared = [...this.entries].some((e) => e.host === entry.host);
    if (entry.host && !shared) this.ledger.freeHost(entry.host.byteLength);
    if (entry.hash !== undefined) {
      const list = this.byHash.get(entry.hash)!.filter((e) => e !== entry);
      if (list.length) this.byHash.set(entry.hash, list);
      else this.byHash.delete(entry.hash);
    }
    entry.host = undefined;
  }

  /** Waits for every pending device→host copy. */
  async flush(): Promise<void> {
    await Promise.all([...this.entries].map((e) => e.pending));
  }

  stats(): {
    bytesOffloaded: number;
    bytesDeduplicated: number;
    copies: number;
    hostBytes: number;
    deviceBytes: number;
    entries: number;
  } {
    let hostBytes = 0;
    let deviceBytes = 0;
    const counted = new Set<HostArray>();
    for (const e of this.entries) {
      if (e.host && !counted.has(e.host)) {
        counted.add(e.host);
        hostBytes += e.host.byteLength;
      }
      if (e.device && !e.device.isDisposed) deviceBytes += e.byteSize;
    }
    return { ...this.counters, hostBytes, deviceBytes, entries: this.entries.size };
  }

  /** A transferable copy of a saved tensor (for worker_threads / Web Workers). */
  async serialize(handle: Handle): Promise<SerializedTensor> {
    const entry = this.entryOf(handle, 'serialize');
    await entry.pending;
    const data = entry.host ?? ((await entry.device!.data()) as HostArray);
    const buffer = data.buffer.slice(
      data.byteOffset,
      data.byteOffset + data.byteLength,
    ) as ArrayBuffer;
    const packed = data instanceof Uint16Array ? { packed: 'uint16' as const } : {};
    return { shape: entry.shape.slice(), dtype: entry.dtype, buffer, ...packed };
  }

  private shouldOffload(bytes: number): boolean {
    if (this.policy === 'always') return true;
    if (this.policy === 'never') return false;
    return bytes > this.policy.aboveBytes;
  }

  private startCopy(entry: Entry): void {
    if (entry.pending || entry.host) return;
    const device = entry.device!;
    entry.pending = (async () => {
      const data = (await device.data()) as HostArray;
      const hash = hashBytes(data);
      const same = this.byHash
        .get(hash)
        ?.find((e) => e !== entry && e.host && sameBytes(e.host, data));
      if (same) {
        // identical contents made by another op: share that host copy
        entry.host = same.host;
        this.counters.bytesDeduplicated += data.byteLength;
        this.ledger.count('bytesDeduplicated', data.byteLength);
      } else {
        entry.host = data;
        this.counters.copies++;
        this.counters.bytesOffloaded += data.byteLength;
        this.ledger.count('copies');
        this.ledger.count('bytesOffloaded', data.byteLength);
        this.ledger.allocateHost(data.byteLength);
      }
      entry.hash = hash;
      this.index(entry);
      if (this.entries.has(entry)) {
        device.dispose();
        entry.device = undefined;
      }
    })();
  }

  private enforceBudget(latest: Entry): void {
    if (!Number.isFinite(this.maxDeviceBytes)) return;
    if (latest.byteSize > this.maxDeviceBytes && !this.shouldOffload(latest.byteSize)) {
      throw new InvalidArgumentError(
        `maxDeviceBytes ${this.maxDeviceBytes} is below one saved tensor of ${latest.byteSize} bytes that the policy keeps on the device`,
      );
    }
    const onDevice = [...this.entries]
      .filter((e) => e.device && !e.pending)
      .sort((a, b) => b.byteSize - a.byteSize);
    let bytes = onDevice.reduce((s, e) => s + e.byteSize, 0);
    for (const e of onDevice) {
      if (bytes <= this.maxDeviceBytes) break;
      this.startCopy(e);
      bytes -= e.byteSize;
    }
  }

  private index(entry: Entry): void {
    const list = this.byHash.get(entry.hash!) ?? [];
    if (!list.includes(entry)) list.push(entry);
    this.byHash.set(entry.hash!, list);
  }

  private reuse(entry: Entry): Handle {
    return this.handle(entry);
  }

  private handle(entry: Entry): Handle {
    entry.refs++;
    const h: HandleImpl = {
      id: nextId++,
      shape: entry.shape,
      dtype: entry.dtype,
      byteSize: entry.byteSize,
      owner: this,
      entry,
      released: false,
    };
    return h;
  }

  private entryOf(handle: Handle, op: string): Entry {
    const h = handle as HandleImpl;
    if (h.owner !== this)
      throw new StateError(`Marshaler.${op}: the handle belongs to another marshaler`);
    if (h.released) throw new StateError(`Marshaler.${op}: the handle was released`);
    return h.entry;
  }
}

/** A tensor as transferable bytes. */
export interface SerializedTensor {
  shape: number[];
  dtype: SavedDtype;
  buffer: ArrayBuffer;
  /** 'uint16': an int32 index list sent as 16-bit values (half the bytes on the wire). */
  packed?: 'uint16';
}

export function deserialize(s: SerializedTensor): tf.Tensor {
  const data =
    s.packed === 'uint16'
      ? new Uint16Array(s.buffer)
      : s.dtype === 'float32'
        ? new Float32Array(s.buffer)
        : s.dtype === 'bool'
          ? new Uint8Array(s.buffer)
          : new Int32Array(s.buffer);
  return tf.tensor(widen(data), s.shape, s.dtype);
}

/** tfjs has no 16-bit integer dtype: a 16-bit index list becomes int32 on the device. */
function widen(data: HostArray): Float32Array | Int32Array | Uint8Array {
  return data instanceof Uint16Array ? Int32Array.from(data) : data;
}

function checkDtype(dtype: string): SavedDtype {
  if (dtype === 'float32' || dtype === 'int32' || dtype === 'bool') return dtype;
  throw new InvalidArgumentError(`Marshaler cannot save tensors of dtype ${dtype}`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameBytes(a: HostArray, b: HostArray): boolean {
  if (a.constructor !== b.constructor || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** FNV-1a over 32-bit words (byte tail folded in): a fast content key, confirmed by sameBytes. */
function hashBytes(a: HostArray): number {
  const words = a.byteOffset % 4 === 0 ? Math.floor(a.byteLength / 4) : 0;
  const w = new Uint32Array(a.buffer, a.byteOffset, words);
  let h = 0x811c9dc5;
  for (let i = 0; i < words; i++) h = Math.imul(h ^ w[i], 0x01000193);
  const tail = new Uint8Array(a.buffer, a.byteOffset + words * 4, a.byteLength - words * 4);
  for (let i = 0; i < tail.length; i++) h = Math.imul(h ^ tail[i], 0x01000193);
  return h >>> 0;
}
