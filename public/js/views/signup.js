/** #/signup: create the account, then sign straight in and open Security. */
import { api, saveSession } from '../session.js';
import { $, clearFormError, showFormError, withBusy } from '../dom.js';
import { FIELD_OF_CODE } from '../errors.js';
import { passwordError, passwordPolicy, passwordProblems } from '../password-policy.js';
import { go } from '../router.js';
import { flash } from '../ui.js';
import { afterPasswordStep } from './login.js';

export const signupView = {
  title: 'Create your account',
  enter() {
    clearFormError($('#signup-form'));
  },
  wire() {
    $('#signup-form').addEventListener('submit', onSubmit);
  },
};

async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = form.email.value.trim();
  const displayName = form.display_name.value.trim();
  const password = form.password.value;
  clearFormError(form);
  if (!email || !form.email.checkValidity()) {
    return showFormError(form, 'Enter a valid email address, like name@example.com.', { field: 'email' });
  }
  const problems = passwordProblems(await passwordPolicy(), password);
  if (problems.length > 0) return showFormError(form, passwordError('password', problems), { field: 'password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const body = { email, password };
      if (displayName) body.display_name = displayName;
      await api('POST', '/auth/signup', { body, auth: false });
    } catch (error) {
      const field = error?.code === 'INVALID_PASSWORD' ? 'password' : FIELD_OF_CODE[error?.code];
      return showFormError(form, error, { field });
    }
    // The new account has no MFA yet: sign straight in.
    try {
      const data = await api('POST', '/auth/login', { body: { email, password }, auth: false });
      form.reset();
      if (data?.mfa_required) return afterPasswordStep(data);
      saveSession(data);
      flash('Your account is ready. Next, turn on two-step verification so you can trust your devices.');
      go('security');
    } catch {
      form.reset();
      flash('Your account is ready. Sign in to continue.');
      go('login');
    }
  });
}
