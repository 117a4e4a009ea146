package cluster

import (
	"errors"
	"slices"
	"testing"
)

func TestAtomicCommandAndState(t *testing.T) {
	ranges := []SlotRange{{0, 99}, {200, 200}}
	args, onTarget := atomicCommand(MigrationRedisASM, ranges, "dst")
	if !onTarget || !slices.Equal(args, []string{"CLUSTER", "MIGRATION", "IMPORT", "0", "99", "200", "200"}) {
		t.Errorf("redis: %v on target %v", args, onTarget)
	}
	args, onTarget = atomicCommand(MigrationValkeyASM, ranges, "dst")
	if onTarget || !slices.Equal(args, []string{"CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "99", "200", "200", "NODE", "dst"}) {
		t.Errorf("valkey: %v on target %v", args, onTarget)
	}
	if m := pairMigration(ServerVersion{"redis", 8, 4, 0}, ServerVersion{"redis", 7, 0, 15}); m != MigrationClassic {
		t.Errorf("mixed 8.4/7.0 pair uses %s, want classic", m)
	}
	for _, tc := range []struct {
		name    string
		mech    AtomicMigration
		entries []map[string]string
		done    bool
		failed  bool
	}{
		{"redis running", MigrationRedisASM, []map[string]string{{"id": "t1", "state": "sending-snapshot"}}, false, false},
		{"redis completed", MigrationRedisASM, []map[string]string{{"id": "t0", "state": "failed"}, {"id": "t1", "state": "completed"}}, true, false},
		{"redis failed", MigrationRedisASM, []map[string]string{{"id": "t1", "state": "failed", "last_error": "boom"}}, false, true},
		{"valkey success", MigrationValkeyASM, []map[string]string{{"slot_ranges": "0-99 200-200", "state": "success"}}, true, false},
		{"valkey other job", MigrationValkeyASM, []map[string]string{{"slot_ranges": "5-6", "state": "success"}}, false, false},
		{"valkey cancelled", MigrationValkeyASM, []map[string]string{{"slot_ranges": "0-99 200-200", "state": "cancelled"}}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := atomicTaskState(tc.mech, tc.entries, "t1", ranges)
			if done != tc.done || (err != nil) != tc.failed || (err != nil && !errors.Is(err, ErrSlotState)) {
				t.Errorf("done %v err %v; want done %v failed %v", done, err, tc.done, tc.failed)
			}
		})
	}
}
