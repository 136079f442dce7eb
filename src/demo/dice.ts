import { randomInt } from 'node:crypto';

export interface Roll {
  notation: string;
  rolls: number[];
  modifier: number;
  total: number;
}

const NOTATION = /^\s*(\d{1,3})?\s*d\s*(\d{1,4})\s*(?:([+-])\s*(\d{1,6}))?\s*$/i;

/** Parses and rolls NdM±K (1 ≤ N ≤ 100, 2 ≤ M ≤ 1000). Throws a readable error otherwise. */
export function roll(notation: string, rand: (max: number) => number = (m) => randomInt(1, m + 1)): Roll {
  const m = NOTATION.exec(notation);
  if (!m) throw new Error(`'${notation}' is not dice notation; use NdM or NdM+K, e.g. 2d6+1`);
  const count = m[1] === undefined ? 1 : Number(m[1]);
  const sides = Number(m[2]);
  if (count < 1 || count > 100) throw new Error('roll between 1 and 100 dice');
  if (sides < 2 || sides > 1000) throw new Error('dice have between 2 and 1000 sides');
  const modifier = m[4] === undefined ? 0 : (m[3] === '-' ? -1 : 1) * Number(m[4]);
  const rolls = Array.from({ length: count }, () => rand(sides));
  return { notation: notation.replace(/\s+/g, ''), rolls, modifier, total: rolls.reduce((a, b) => a + b, 0) + modifier };
}

export function describeRoll(r: Roll): string {
  const mod = r.modifier === 0 ? '' : ` ${r.modifier > 0 ? '+' : '-'} ${Math.abs(r.modifier)}`;
  return `You rolled ${r.notation}: [${r.rolls.join(', ')}]${mod} = ${r.total}`;
}
