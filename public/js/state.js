/**
 * The one shared, in-memory state of the app (multi-step flows and the data
 * the current view shows). Secrets here (the MFA temporary token, the
 * activation token) never touch storage.
 */
export const state = {
  /** @type {{temporary_token: string, methods: string[], mfa_reason?: string|null, email?: string}|null} */
  pendingMfa: null,
  /** @type {any} the trusted_device object from /auth/mfa/verify */
  pendingTrust: null,
  useBackupCode: false,
  /** @type {any[]} */
  devices: [],
  /** @type {string|null} */
  eventsBefore: null,
  booted: false,
  flashSticky: false,
  /** Bumped on every render: async work started for an older render is dropped. */
  renderSeq: 0,
};

/** True while the view that started async work (at `seq`) is still shown. */
export const stillOn = (seq) => seq === state.renderSeq;

/** Forget everything that belongs to the signed-in user. */
export function resetState() {
  state.pendingMfa = null;
  state.pendingTrust = null;
  state.useBackupCode = false;
  state.devices = [];
  state.eventsBefore = null;
}
