"""The ids the files in events/ refer to, seeded into the emulator (standard library only: the bench's
cold-start probe imports them)."""

PROJECT_ID = "a33671aa-8a1e-4c3b-9f0e-5d2b6c7e8f90"
DATASET_ID = "9f64e5c7-dc5a-45c8-a17c-1b85f0bec97d"
EXPERIMENT_IDS = ["3fd6b5e0-8910-4b1c-a7d0-5b84de329012", "4ae7c6f1-9a21-4c2d-b8e1-6c95ef43a123"]
