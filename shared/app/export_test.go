package app

// NewEntryWith is NewEntry with the configuration from load instead of the process
// environment.
var NewEntryWith = newEntry
