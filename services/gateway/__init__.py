"""The model gateway: every model call goes through LiteLLM's Router in-process, is checked against the client's
budgets before it is made (`budgets.reserve`), and is written to the spend ledger afterwards (`budgets.settle`,
`ledger.report`)."""
