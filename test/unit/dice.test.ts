import { describeRoll, roll } from '../../src/demo/dice.js';

describe('dice notation', () => {
  const fixed = () => 2;
  it.each([
    ['2d4+1', [2, 2], 1, 5],
    ['d6', [2], 0, 2],
    ['3d10-4', [2, 2, 2], -4, 2],
    [' 1 d 20 ', [2], 0, 2],
  ])('%s', (n, rolls, modifier, total) => {
    expect(roll(n, fixed)).toMatchObject({ rolls, modifier, total });
  });
  it.each(['', 'abc', '0d6', '101d6', '2d1', '2d1001', '2d6+', 'd'])('rejects %j', (n) => expect(() => roll(n)).toThrow());
  it('describes a roll', () => {
    expect(describeRoll(roll('2d4+1', fixed))).toBe('You rolled 2d4+1: [2, 2] + 1 = 5');
  });
  it('stays within bounds', () => {
    for (let i = 0; i < 200; i++) {
      const r = roll('3d6');
      expect(r.rolls.every((x) => x >= 1 && x <= 6)).toBe(true);
    }
  });
});
