// Package shm provides named shared-memory segments.
package shm
