import { callerLayer, effectiveAllowed, effectiveNeedsApproval, grantFor, isAllowed, materializeApproval, needsApproval, registeredLayers, type PolicyLayer } from '../../src/policy/policy.js';
import type { AllowedTools, ApprovalPolicy, Grant, Grants } from '../../src/policy/schema.js';

const ro = { name: 'read', readOnly: true };
const rw = { name: 'write', readOnly: false };

describe('allowed_tools', () => {
  const cases: Array<[AllowedTools, typeof ro, boolean]> = [
    [null, rw, true],
    [['read'], ro, true],
    [['read'], rw, false],
    [[], ro, false],
    [{ tool_names: ['write'] }, rw, true],
    [{ tool_names: ['write'] }, ro, false],
    [{ read_only: true }, ro, true],
    [{ read_only: true }, rw, false],
    [{ read_only: false }, rw, true],
    [{ tool_names: ['write'], read_only: true }, rw, false], // both must hold
    [{ tool_names: ['read'], read_only: true }, ro, true],
    [{}, rw, true],
  ];
  it.each(cases)('%j on %j → %s', (allowed, tool, expected) => {
    expect(isAllowed(tool, allowed)).toBe(expected);
  });
});

describe('require_approval', () => {
  const cases: Array<[ApprovalPolicy, typeof ro, boolean]> = [
    ['always', ro, true],
    ['never', rw, false],
    [{ never: { read_only: true } }, ro, false],
    [{ never: { read_only: true } }, rw, true], // matches neither → approval
    [{ always: { tool_names: ['write'] } }, rw, true],
    [{ always: { tool_names: ['write'] } }, ro, true], // neither → approval
    [{ always: { tool_names: ['write'] }, never: { tool_names: ['read'] } }, ro, false],
    [{ always: { tool_names: ['read'] }, never: { read_only: true } }, ro, true], // always wins a tie
    [{}, ro, true],
  ];
  it.each(cases)('%j on %j → %s', (policy, tool, expected) => {
    expect(needsApproval(tool, policy)).toBe(expected);
  });
});

describe('effective policy is the stricter of admin and caller', () => {
  const admin = { allowed_tools: { read_only: true }, require_approval: 'never' as const };
  it('a tool is allowed only if both allow it', () => {
    const caller = callerLayer({ allowed_tools: ['write', 'read'] }, true);
    expect(effectiveAllowed(ro, [admin, caller])).toBe(true);
    expect(effectiveAllowed(rw, [admin, caller])).toBe(false);
    expect(effectiveAllowed(ro, [admin, callerLayer({ allowed_tools: ['other'] }, true)])).toBe(false);
  });
  it('approval is required if either requires it', () => {
    expect(effectiveNeedsApproval(ro, [admin, callerLayer({ require_approval: 'always' }, true)])).toBe(true);
    expect(effectiveNeedsApproval(ro, [{ allowed_tools: null, require_approval: 'always' }, callerLayer({ require_approval: 'never' }, true)])).toBe(true);
  });
  it('an omitted caller require_approval adds nothing for a registered label', () => {
    expect(effectiveNeedsApproval(ro, [admin, callerLayer({}, true)])).toBe(false);
  });
  it('an omitted require_approval on an inline server means always', () => {
    expect(effectiveNeedsApproval(ro, [callerLayer({}, false)])).toBe(true);
    expect(effectiveNeedsApproval(ro, [callerLayer({ require_approval: 'never' }, false)])).toBe(false);
  });
  it('materializes one equivalent value for the echo', () => {
    const layers = [admin, callerLayer({ require_approval: { always: { tool_names: ['write'] } } }, true)];
    expect(materializeApproval([ro, rw], [admin, callerLayer({}, true)])).toBe('never');
    expect(materializeApproval([ro, rw], [{ allowed_tools: null, require_approval: 'always' }, callerLayer({}, true)])).toBe('always');
    expect(materializeApproval([ro, rw], [{ allowed_tools: null, require_approval: { never: { read_only: true } } }, callerLayer({}, true)])).toEqual({
      never: { tool_names: ['read'] },
    });
    expect(materializeApproval([ro], layers)).toBe('always'); // 'read' matches neither filter of the caller
  });
});

describe('grants: a third layer that can only narrow (SPEC §11)', () => {
  const record = { allowed_tools: null, require_approval: 'never' as const };
  const layers = (grant: Grant | null, caller = callerLayer({}, true)) => registeredLayers(record, grant, caller);

  it.each([
    ['*', 'crm', null],
    [[], 'crm', undefined],
    [[{ server_label: 'dice' }], 'crm', undefined],
    [[{ server_label: 'CRM' }], 'crm', { server_label: 'CRM' }],
    [[{ server_label: 'crm', allowed_tools: ['read'] }], 'Crm', { server_label: 'crm', allowed_tools: ['read'] }],
  ] as Array<[Grants, string, Grant | null | undefined]>)('grantFor(%j, %s) → %j', (grants, label, expected) => {
    expect(grantFor(grants, label)).toEqual(expected);
  });

  const cases: Array<[string, Grant | null, PolicyLayer, typeof ro, boolean, boolean]> = [
    // [what, grant, caller, tool, allowed, needs approval]
    ['"*" adds nothing', null, callerLayer({}, true), rw, true, false],
    ['bare grant adds nothing', { server_label: 'x' }, callerLayer({}, true), rw, true, false],
    ['grant allowed_tools narrows', { server_label: 'x', allowed_tools: ['read'] }, callerLayer({}, true), rw, false, false],
    ['grant read_only filter', { server_label: 'x', allowed_tools: { read_only: true } }, callerLayer({}, true), ro, true, false],
    ['caller cannot widen the grant', { server_label: 'x', allowed_tools: ['read'] }, callerLayer({ allowed_tools: ['read', 'write'] }, true), rw, false, false],
    ['caller narrows within the grant', { server_label: 'x', allowed_tools: ['read', 'write'] }, callerLayer({ allowed_tools: ['read'] }, true), rw, false, false],
    ['grant requires approval', { server_label: 'x', require_approval: 'always' }, callerLayer({}, true), ro, true, true],
    ['caller "never" cannot waive the grant', { server_label: 'x', require_approval: 'always' }, callerLayer({ require_approval: 'never' }, true), ro, true, true],
    ['grant filter: write needs approval', { server_label: 'x', require_approval: { never: { read_only: true } } }, callerLayer({}, true), rw, true, true],
    ['grant filter: read is free', { server_label: 'x', require_approval: { never: { read_only: true } } }, callerLayer({}, true), ro, true, false],
    ['null require_approval adds nothing', { server_label: 'x', require_approval: null }, callerLayer({}, true), rw, true, false],
  ];
  it.each(cases)('%s', (_what, grant, caller, tool, allowed, approval) => {
    expect(effectiveAllowed(tool, layers(grant, caller))).toBe(allowed);
    expect(effectiveNeedsApproval(tool, layers(grant, caller))).toBe(approval);
  });

  it('a grant "never" cannot waive the record’s "always"', () => {
    const l = registeredLayers({ allowed_tools: null, require_approval: 'always' }, { server_label: 'x', require_approval: 'never' }, callerLayer({}, true));
    expect(effectiveNeedsApproval(ro, l)).toBe(true);
  });

  it('materializes the echo over all three layers', () => {
    expect(materializeApproval([ro, rw], layers({ server_label: 'x', require_approval: { never: { read_only: true } } }))).toEqual({ never: { tool_names: ['read'] } });
    expect(materializeApproval([ro, rw], layers({ server_label: 'x' }))).toBe('never');
  });
});
