import { decodeSplitBusMessage, encodeBusMessage, SPLIT_MIN_CHARS } from '../../src/cluster/bus-codec';
import type { BusMessage } from '../../src/cluster/messages';
import { encode } from '../../src/protocol/codec';
import { copyJson, heldText, withJsonText } from '../../src/protocol/json-text';
import type { InvocationResult, InvokeFunction } from '../../src/protocol/messages';

/**
 * Payloads that cross nodes as text: a field held as JSON text is written into the next frame
 * as it is, and reads as its parsed value for anyone who looks.
 */

const data = { greeting: 'hé\n"there"', list: [1, 2.5, null, true], nested: { deep: ['x'] } };
const text = JSON.stringify(data);

describe('a field held as JSON text', () => {
  test('reads as its parsed value, parsed once', () => {
    const message = withJsonText({ type: 'invokefunction', function_id: 'f' } as InvokeFunction, 'data', text);
    expect(message.data).toEqual(data);
    expect(message.data).toBe(message.data);
    expect(heldText(message)).toEqual({ key: 'data', text });
  });

  test('encode writes the text into the frame, which parses to the same frame as the value would give', () => {
    const message = withJsonText(
      { type: 'invokefunction', invocation_id: 'i', function_id: 'f', traceparent: 't' } as InvokeFunction,
      'data',
      text,
    );
    const frame = String(encode(message));
    expect(frame).toContain(text);
    expect(JSON.parse(frame)).toEqual({
      type: 'invokefunction',
      invocation_id: 'i',
      function_id: 'f',
      traceparent: 't',
      data,
    });
  });

  test('a field with no other fields beside it still makes valid JSON', () => {
    expect(JSON.parse(String(encode(withJsonText({} as InvocationResult, 'result', '42'))))).toEqual({ result: 42 });
  });

  test('a field given a new value is written with that value, not the old text', () => {
    const message = withJsonText({ type: 'invokefunction', function_id: 'f' } as InvokeFunction, 'data', text);
    message.data = { other: 1 };
    expect(heldText(message)).toBeUndefined();
    expect(JSON.parse(String(encode(message)))).toEqual({
      type: 'invokefunction',
      function_id: 'f',
      data: { other: 1 },
    });
  });

  test('a spread copy holds the parsed value and no text; JSON.stringify of the original is correct', () => {
    const message = withJsonText({ type: 'invokefunction', function_id: 'f' } as InvokeFunction, 'data', text);
    const copy = { ...message, function_id: 'g' };
    expect(heldText(copy)).toBeUndefined();
    expect(JSON.parse(String(encode(copy)))).toEqual({ type: 'invokefunction', function_id: 'g', data });
    expect(JSON.parse(JSON.stringify(message))).toEqual({ type: 'invokefunction', function_id: 'f', data });
  });

  test('copyJson copies the text without parsing it, and a plain value as it is', () => {
    const from = withJsonText({}, 'result', '{"not":');
    const to: Record<string, unknown> = {};
    copyJson(from, to, 'result');
    // Malformed on purpose: had anything parsed it, the copy would have thrown.
    expect(heldText(to)).toEqual({ key: 'result', text: '{"not":' });
    const plain: Record<string, unknown> = {};
    copyJson({ result: [1] }, plain, 'result');
    expect(plain).toEqual({ result: [1] });
    const absent: Record<string, unknown> = {};
    copyJson({}, absent, 'result');
    expect('result' in absent).toBe(false);
  });
});

describe('bus frames', () => {
  const large = { ...data, rows: Array.from({ length: 100 }, (_, i) => ({ i, name: `row ${i}` })) };
  const largeText = JSON.stringify(large);
  const invoke: BusMessage = {
    type: 'invoke',
    id: 'c1',
    functionId: 'f',
    workerId: 'w',
    data: large,
    timeoutMs: 1000,
    traceparent: 't',
  };

  test('the large payload of these tests is over the split threshold, the small one under it', () => {
    expect(largeText.length).toBeGreaterThanOrEqual(SPLIT_MIN_CHARS);
    expect(text.length).toBeLessThan(SPLIT_MIN_CHARS);
  });

  test('a call splits into header and payload text, and comes back with its data as that text', () => {
    const frame = String(encodeBusMessage(invoke, 'node-a', true));
    expect(frame.split('\n')).toHaveLength(2);
    expect(frame.endsWith(`\n${largeText}`)).toBe(true);
    const decoded = decodeSplitBusMessage(Buffer.from(frame))!;
    expect(decoded.from).toBe('node-a');
    // Held as the bytes it came in, not decoded to a string.
    const held = heldText(decoded.message)!;
    expect(held.key).toBe('data');
    expect(Buffer.isBuffer(held.text)).toBe(true);
    expect(String(held.text)).toBe(largeText);
    expect(decoded.message).toEqual(invoke);
  });

  test('a payload held as bytes goes into the next frame as bytes: a worker frame, or a bus frame to a third node', () => {
    const decoded = decodeSplitBusMessage(Buffer.from(String(encodeBusMessage(invoke, 'node-a', true))))!;
    const frame = withJsonText(
      { type: 'invokefunction', function_id: 'f' } as InvokeFunction,
      'data',
      heldText(decoded.message)!.text,
    );
    const bytes = encode(frame);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(JSON.parse(String(bytes))).toEqual({ type: 'invokefunction', function_id: 'f', data: large });
    const forwarded = encodeBusMessage(decoded.message, 'node-b', true);
    expect(Buffer.isBuffer(forwarded)).toBe(true);
    expect(decodeSplitBusMessage(forwarded as Buffer)!.message).toEqual(invoke);
    // To a node of wire 1 the same message is one plain JSON object.
    expect(JSON.parse(String(encodeBusMessage(decoded.message, 'node-b', false)))).toEqual({
      from: 'node-b',
      message: invoke,
    });
  });

  test('a payload held as text is written as that text, unparsed', () => {
    const long = `{"x": "${'y'.repeat(SPLIT_MIN_CHARS)}"}`;
    const held = withJsonText({ type: 'result', id: 'c1' } as BusMessage, 'result', long);
    expect(String(encodeBusMessage(held, undefined, true))).toBe(
      `{"message":{"type":"result","id":"c1"},"payload":"result"}\n${long}`,
    );
    const short = withJsonText({ type: 'result', id: 'c1' } as BusMessage, 'result', '{"x": 1}');
    expect(String(encodeBusMessage(short, 'node-b', true))).toBe(
      '{"from":"node-b","message":{"type":"result","id":"c1","result":{"x": 1}}}',
    );
  });

  test('a short payload held as bytes travels inside one plain JSON object too', () => {
    const held = withJsonText({ type: 'result', id: 'c1' } as BusMessage, 'result', Buffer.from('{"x":"é"}'));
    expect(encodeBusMessage(held, 'node-b', true)).toBe(
      '{"from":"node-b","message":{"type":"result","id":"c1","result":{"x":"é"}}}',
    );
  });

  test('a small payload travels inside one plain JSON object, as before', () => {
    const small: BusMessage = { ...invoke, data };
    const frame = String(encodeBusMessage(small, 'node-a', true));
    expect(decodeSplitBusMessage(Buffer.from(frame))).toBeUndefined();
    expect(JSON.parse(frame)).toEqual({ from: 'node-a', message: small });
  });

  test('to a node of wire 1, and for messages without a payload, one plain JSON object', () => {
    expect(JSON.parse(String(encodeBusMessage(invoke, 'node-a', false)))).toEqual({ from: 'node-a', message: invoke });
    const error: BusMessage = { type: 'result', id: 'c1', error: { code: 'x', message: 'y' } };
    const noResult: BusMessage = { type: 'result', id: 'c2' };
    const leaving: BusMessage = { type: 'leaving' };
    for (const message of [error, noResult, leaving]) {
      const frame = String(encodeBusMessage(message, undefined, true));
      expect(JSON.parse(frame)).toEqual(message);
      expect(decodeSplitBusMessage(Buffer.from(frame))).toBeUndefined();
    }
  });

  test('a header naming an unknown payload field is refused', () => {
    expect(() => decodeSplitBusMessage(Buffer.from('{"message":{"type":"invoke"},"payload":"x"}\n1'))).toThrow(
      'unknown bus payload field x',
    );
    expect(() => decodeSplitBusMessage(Buffer.from('{"payload":"data"}\n1'))).toThrow('without a message');
    expect(() => decodeSplitBusMessage(Buffer.from('{not json\n1'))).toThrow();
  });
});
