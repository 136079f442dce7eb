/**
 * In-process A/B: the response store's size estimate for one conversation of 100 turns (each
 * adds a user message, an mcp_call with a 1 KB output and an assistant message): stringify the
 * whole transcript on every store (before) vs per-entry sizes remembered (src/responses/size.ts).
 * Rounds interleaved; prints the median CPU time per conversation of each and the ratio.
 */
import { transcriptSize } from '../src/responses/size.js';

function conversation(): object[][] {
  const puts: object[][] = [];
  let t: object[] = [];
  for (let i = 0; i < 100; i++) {
    t = [
      ...t,
      { type: 'message', role: 'user', content: `question ${i} `.repeat(8) },
      { type: 'mcp_call', id: `mcp_${i}`, server_label: 'fx', name: 'echo', arguments: '{"text":"x"}', output: 'y'.repeat(1024), error: null, status: 'completed' },
      { type: 'message', id: `msg_${i}`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'answer '.repeat(30), annotations: [], logprobs: [] }] },
    ];
    puts.push(t);
  }
  return puts;
}

const variants = {
  stringify: (puts: object[][]) => puts.reduce((n, t) => n + JSON.stringify(t).length, 0),
  remembered: (puts: object[][]) => puts.reduce((n, t) => n + transcriptSize(t), 0),
};
const times: Record<string, number[]> = { stringify: [], remembered: [] };
let check = 0;
for (let round = 0; round < 60; round++) {
  for (const [name, f] of round % 2 ? Object.entries(variants) : Object.entries(variants).reverse()) {
    const puts = conversation(); // fresh entries: nothing remembered from an earlier round
    const t0 = process.cpuUsage();
    check += f(puts);
    const d = process.cpuUsage(t0);
    if (round >= 10) times[name]!.push((d.user + d.system) / 1000);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const a = med(times.stringify!);
const b = med(times.remembered!);
console.log(`| store size estimate, 100-turn conversation: stringify whole transcript per store | ${a.toFixed(2)} ms CPU |`);
console.log(`| store size estimate, per-entry sizes remembered | ${b.toFixed(2)} ms CPU (${(b / a).toFixed(2)}×) |`);
if (!check) throw new Error('no work');
