package sessionsql

import "testing"

func TestClampLimit(t *testing.T) {
	tests := []struct{ in, want int }{
		{-1, defaultLimit},
		{0, defaultLimit},
		{1, 1},
		{maxLimit, maxLimit},
		{maxLimit + 1, maxLimit},
	}
	for _, tc := range tests {
		if got := clampLimit(tc.in); got != tc.want {
			t.Errorf("clampLimit(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
