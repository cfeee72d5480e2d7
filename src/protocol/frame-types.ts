/**
 * The shapes of the data-phase frame codecs (see frame-codec.ts for their contract), apart from
 * the codecs themselves so that each codec and the factory choosing between them can share them
 * without importing each other.
 */
export interface FrameDecoder {
  /** Decodes `chunk`, calling `onMessage` for every frame it completes. See frame-codec.ts. */
  push(chunk: Uint8Array, onMessage: (msg: unknown[]) => void): void;
  /** Bytes held for an incomplete frame. */
  readonly buffered: number;
}

export interface FrameDecoderOptions {
  /** Largest accepted frame, and most bytes buffered for an incomplete one. Default 16 MiB. */
  maxFrameBytes?: number | undefined;
  /**
   * Most data items one frame may hold (default DEFAULT_MAX_FRAME_ITEMS, 1,000,000): the message
   * array itself, every array element, every map key and every map value, every tagged value and
   * every chunk of an indefinite-length string.
   */
  maxFrameItems?: number | undefined;
  /** Deepest accepted nesting of arrays/maps (the message array itself is level 1). Default 500. */
  maxDepth?: number | undefined;
}

/** Resolved decoder limits (what the format-specific decoders receive). */
export interface FrameLimits {
  maxFrameBytes: number;
  maxFrameItems: number;
  maxDepth: number;
}

export interface FrameEncoder {
  /** One frame. */
  encode(msg: readonly unknown[]): Uint8Array;
  /** All frames back to back in one buffer. */
  encodeBatch(msgs: readonly (readonly unknown[])[]): Uint8Array;
  /**
   * All frames back to back in one or more buffers (written in order, they are the same bytes
   * as `encodeBatch`'s); a big batch is split instead of copied into ever larger buffers. With
   * `maxBytes`, encoding stops after the frame that takes the buffers past it (the caller sees
   * more than `maxBytes` and does not send them): a batch of replies to small requests cannot
   * make the encoder allocate far more than the connection may hold.
   */
  encodeChunks(msgs: readonly (readonly unknown[])[], maxBytes?: number): Uint8Array[];
}
