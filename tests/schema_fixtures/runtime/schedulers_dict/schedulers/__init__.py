"""A stand-in for a diffusion library's schedulers: classes whose names are the choices."""


class DDIMScheduler:
    steps = 50


class EulerAncestralDiscreteScheduler:
    steps = 30


class DPMSolverMultistepScheduler:
    steps = 25


ALL = [DDIMScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler]
