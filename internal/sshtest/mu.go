package sshtest

import "sync"

var mu sync.Mutex
