// Re-exports the generated bindings, so that `import CarePass` is enough for an app to name
// the core's types (`Profile`, `CarePassConfig`, `CarePassError`, `InsuranceType`, …) next
// to the facade's own.
//
// Beware one name: the bindings declare a class `CarePass` (the raw core object), the same
// name as this module. Apps use `CarePassClient` and never need to write `CarePass.X`; if
// they must qualify, they qualify with `CarePassFFI.`.

@_exported import CarePassFFI
