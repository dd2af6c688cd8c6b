"""The OS keyring: where tui-oauth keeps secrets and private keys (never in the database).

One concern per module; import the one you need (this package imports none of
them, so a command that never touches the keyring loads nothing of it):

* :mod:`.store`      -- :class:`~.store.SecretStore`: the secrets of one database,
  the choice and refusal of keyring backends, backend errors mapped to
  :class:`~tui_oauth.core.errors.SecretStoreError` (never showing a value).
* :mod:`.dbus`       -- the Secret Service's D-Bus names, and the calls made
  directly: probe a bus, unlock or lock the login keyring.
* :mod:`.session`    -- the private session used when there is no D-Bus session
  bus (over SSH): join, unlock or start it; its status; lock; stop.
* :mod:`.state`      -- that session's directory (0700), state file and lock.
* :mod:`.daemons`    -- starting and ending its dbus-daemon and gnome-keyring.
* :mod:`.passphrase` -- its keyring passphrase: from a file, or asked through a
  callback the front door gives (core never prompts or prints).
"""
