"""payswitch, installed under one import namespace: `payswitch.switch` (the server),
`payswitch.client` (the SDK and operator CLI), `payswitch.protocol` (the wire format, sans-IO)
and `payswitch.loadtest` (the load generator). In the repository they are the folders of the
same names at the top; the entries here are links to them."""
