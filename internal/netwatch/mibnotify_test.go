package netwatch

import "testing"

func TestMibChange(t *testing.T) {
	tests := []struct {
		src  mibSource
		typ  uint32
		want change
	}{
		{mibAddress, mibAddInstance, changeAddrAdded},
		{mibAddress, mibParameterNotification, changeAddrAdded},
		{mibAddress, mibDeleteInstance, changeAddrRemoved},
		{mibAddress, mibInitialNotification, 0},
		{mibAddress, 7, changeAddrAdded},
		{mibInterface, mibAddInstance, changeLink},
		{mibInterface, mibParameterNotification, changeLink},
		{mibInterface, mibDeleteInstance, changeLink},
		{mibInterface, mibInitialNotification, 0},
		{mibRoute, mibAddInstance, changeRoute},
		{mibRoute, mibDeleteInstance, changeRoute},
		{mibRoute, mibParameterNotification, changeRoute},
		{mibRoute, mibInitialNotification, 0},
		{mibSources, mibAddInstance, 0},
		{200, mibDeleteInstance, 0},
	}
	for _, tt := range tests {
		if got := mibChange(tt.src, tt.typ); got != tt.want {
			t.Errorf("mibChange(%d, %d) = %v, want %v", tt.src, tt.typ, got, tt.want)
		}
	}
}

func FuzzMibChange(f *testing.F) {
	for src := range mibSources + 1 {
		for typ := range uint32(5) {
			f.Add(uint8(src), typ)
		}
	}
	f.Fuzz(func(t *testing.T, src uint8, typ uint32) {
		c := mibChange(mibSource(src), typ)
		switch {
		case c&^(changeAddrAdded|changeAddrRemoved|changeLink|changeRoute) != 0:
			t.Fatalf("unknown change bits %v", c)
		case typ == mibInitialNotification && c != 0:
			t.Fatalf("the initial notification reports %v", c)
		case mibSource(src) >= mibSources && c != 0:
			t.Fatalf("unknown source %d reports %v", src, c)
		case mibSource(src) < mibSources && typ != mibInitialNotification && c == 0:
			t.Fatalf("source %d type %d reports nothing", src, typ)
		}
	})
}
