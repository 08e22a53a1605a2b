package main

import (
	"bytes"
	"testing"
	"time"
)

func TestPacketLogLine(t *testing.T) {
	var b bytes.Buffer
	// CHANNEL_DATA carrying an SFTP OPEN (length 21, type 3).
	data := []byte{94, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 21, 3, 0, 0, 0, 1}
	writePacketLine(&b, 1500*time.Microsecond, true, data)
	writePacketLine(&b, 2*time.Millisecond, false, []byte{52})
	writePacketLine(&b, 3*time.Millisecond, false, []byte{250, 1})
	want := "    1.500 ms >  94 CHANNEL_DATA 18 sftp OPEN (21 bytes)\n" +
		"    2.000 ms <  52 USERAUTH_SUCCESS 1\n" +
		"    3.000 ms < 250 ? 2\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
