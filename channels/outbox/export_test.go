package outbox

// ParkHorizon exposes parkHorizon to the store tests.
const ParkHorizon = parkHorizon
