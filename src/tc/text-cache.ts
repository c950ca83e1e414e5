/**
 * A bounded memo for parsing texts that bulk requests repeat (a parent 'ffff:', an address
 * '198.18.0.2/32' on thousands of filters). Failures are not remembered: bad input throws every
 * time. Past `limit` entries it starts over, so odd inputs cannot grow it without end.
 */
export function textCache<T>(parse: (text: string) => T, limit = 256): (text: string) => T {
  const known = new Map<string, T>();
  return (text) => {
    const hit = known.get(text);
    if (hit !== undefined) return hit;
    const value = parse(text);
    if (known.size >= limit) known.clear();
    known.set(text, value);
    return value;
  };
}
